import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { erpReceiptSchema } from '../../lib/erp/contract.js';
import { signErpRequest } from '../../lib/erp/sign.js';
import { type CliIo, EXIT_ATTENTION, EXIT_OK, runCommand, UsageError } from '../io.js';
import { printableLines } from '../terminal.js';

const USAGE = `Usage: identity-sync send --url URL --tenant T [--secret whsec_…] (--file PATH | CHANGE)

Signs a change (Standard Webhooks) and posts it to URL/webhooks/erp/T, as an ERP would, then
prints the answer.

Options:
  --url URL              base URL of the API, e.g. http://127.0.0.1:3000
  --tenant T             tenant whose endpoint and secret apply
  --secret whsec_…       the tenant's ERP webhook secret (default: ERP_WEBHOOK_SECRET)
  --file PATH            send this JSON as it is: one change, or {"changes": [...]}
  -h, --help             this help
CHANGE, built from options instead of a file:
  --external-id ID       the customer's id (required)
  --email E, --phone P   new identifiers; the value null clears one, leaving it out keeps it
  --previous-email E     the email before the change, to find the profile by
  --occurred-at T        when it changed, ISO 8601 with offset (default: now)

Exit code: 0 when the answer is 2xx and every change was accepted, 1 when not, 2 for usage errors.
See docs/erp.md.`;

const parseSendArgs = (args: string[]) =>
  parseArgs({
    args,
    strict: true,
    options: {
      url: { type: 'string' },
      tenant: { type: 'string' },
      secret: { type: 'string' },
      file: { type: 'string' },
      'external-id': { type: 'string' },
      email: { type: 'string' },
      phone: { type: 'string' },
      'previous-email': { type: 'string' },
      'occurred-at': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  }).values;

/** `identity-sync send`: signs and posts changes to the ERP endpoint, as an ERP's relay would. */
export async function send(args: string[], io: CliIo): Promise<number> {
  return runCommand(io, USAGE, async () => {
    const options = parseSendArgs(args);
    if (options.help) {
      io.stdout.write(`${USAGE}\n`);
      return EXIT_OK;
    }
    const { url, body, secret } = await requestOf(options, io.env);
    let response: Response;
    try {
      response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...signErpRequest(body, secret) },
        body,
        signal: AbortSignal.timeout(30_000),
      });
    } catch (error) {
      const { cause, message } = error as Error;
      throw new Error(`POST ${url} failed: ${cause instanceof Error ? cause.message : message}`);
    }
    const text = await response.text();
    io.stdout.write(`HTTP ${response.status}\n${printableLines(pretty(text))}\n`);
    if (!response.ok) return EXIT_ATTENTION;
    const receipt = erpReceiptSchema.safeParse(parseJson(text));
    const allAccepted =
      receipt.success && receipt.data.results.every((result) => result.status === 'accepted');
    return allAccepted ? EXIT_OK : EXIT_ATTENTION;
  });
}

async function requestOf(values: ReturnType<typeof parseSendArgs>, env: NodeJS.ProcessEnv) {
  if (!values.url) throw new UsageError('--url is required');
  if (!values.tenant) throw new UsageError('--tenant is required');
  const secret = values.secret ?? env.ERP_WEBHOOK_SECRET;
  if (!secret?.startsWith('whsec_'))
    throw new UsageError('a whsec_… secret is required (--secret or ERP_WEBHOOK_SECRET)');
  const url = endpointOf(values.url, values.tenant);

  if (values.file) {
    if (values['external-id']) throw new UsageError('give --file or --external-id, not both');
    const body = await readFile(values.file, 'utf8').catch((error: Error) => {
      throw new UsageError(`cannot read --file: ${error.message}`);
    });
    return { url, secret, body };
  }
  if (!values['external-id']) throw new UsageError('--file or --external-id is required');
  const orNull = (value: string | undefined) => (value === 'null' ? null : value);
  const change = {
    externalId: values['external-id'],
    email: orNull(values.email),
    phoneNumber: orNull(values.phone),
    ...(values['previous-email'] && { previous: { email: values['previous-email'] } }),
    occurredAt: values['occurred-at'] ?? new Date().toISOString(),
  };
  // JSON.stringify leaves out the identifiers not given: absent leaves them as they are.
  return { url, secret, body: JSON.stringify(change) };
}

function endpointOf(baseUrl: string, tenant: string): string {
  try {
    const base = baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`;
    return new URL(`webhooks/erp/${encodeURIComponent(tenant)}`, base).href;
  } catch {
    throw new UsageError(`--url must be an absolute URL such as http://127.0.0.1:3000, got '${baseUrl}'`);
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

const pretty = (text: string) => {
  const json = parseJson(text);
  return json === undefined ? text : JSON.stringify(json, null, 2);
};
