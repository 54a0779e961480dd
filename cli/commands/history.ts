import { parseArgs } from 'node:util';
import type { AuditEntry } from '../../lib/ports.js';
import { type CliIo, EXIT_OK, runCommand, UsageError } from '../io.js';
import { cliSettings, openStore, tenantOf } from '../session.js';
import { printable, printableJson } from '../terminal.js';

const USAGE = `Usage: identity-sync history <externalId> [--tenant T] [--limit N] [--json]

Prints the decisions recorded for one customer, by the worker and by apply and bind, newest
first: when, outcome, plan, profiles, identifiers before → after, reason, and the event.
Reads the audit trail from the DynamoDB table named by SYNC_STATE_TABLE.
  --tenant T    the customer's tenant (default: DEFAULT_TENANT)
  --limit N     at most N decisions (default: 20)
  --json        the audit entries as a JSON array
  -h, --help    this help`;

/** `identity-sync history <externalId>`: the customer's audit trail. */
export async function history(args: string[], io: CliIo): Promise<number> {
  return runCommand(io, USAGE, async () => {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        tenant: { type: 'string' },
        limit: { type: 'string', default: '20' },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
    if (values.help) {
      io.stdout.write(`${USAGE}\n`);
      return EXIT_OK;
    }
    const [externalId, ...extra] = positionals;
    if (!externalId || extra.length > 0) throw new UsageError('give exactly one externalId');
    const limit = Number(values.limit);
    if (!Number.isInteger(limit) || limit < 1)
      throw new UsageError(`--limit must be a positive integer, got '${values.limit}'`);
    const settings = cliSettings(io.env);
    if (!settings.SYNC_STATE_TABLE) {
      throw new UsageError(
        'history reads the audit trail from DynamoDB: set SYNC_STATE_TABLE (and AWS_REGION)',
      );
    }
    const tenant = tenantOf(values.tenant, settings);

    const store = openStore(settings);
    try {
      const entries = await store.audit.history(tenant, externalId, limit);
      io.stdout.write(
        values.json ? `${printableJson(entries)}\n` : formatHistory(entries, tenant, externalId),
      );
    } finally {
      store.close();
    }
    return EXIT_OK;
  });
}

export function formatHistory(entries: AuditEntry[], tenant: string, externalId: string): string {
  const customer = printable(externalId);
  if (entries.length === 0) return `No decisions recorded for customer ${customer} of tenant ${tenant}.\n`;
  const lines = entries.map(formatEntry);
  return `Decisions for customer ${customer} of tenant ${tenant}, newest first:\n${lines.join('\n')}\n`;
}

/** `<decidedAt>  <outcome>  <plan>  <profiles>  <field before → after, …>  (<reason>)  [<event>]` */
export function formatEntry(entry: AuditEntry): string {
  const profiles =
    entry.profileIds.length === 0
      ? 'no profile'
      : `${entry.profileIds.length === 1 ? 'profile' : 'profiles'} ${entry.profileIds.join(', ')}`;
  const parts = [entry.decidedAt, entry.outcome.padEnd(9), entry.plan.padEnd(16), profiles];
  const changes = Object.entries(entry.after ?? {}).map(([field, value]) =>
    entry.before ? `${field} ${shown(entry.before[field])} → ${shown(value)}` : `${field} → ${shown(value)}`,
  );
  if (changes.length > 0) parts.push(changes.join(', '));
  if (entry.reason) parts.push(`(${entry.reason})`);
  parts.push(`[${entry.sourceEventId}]`);
  // An audit entry holds outside data (ids, identifiers, reasons): no control character reaches the terminal.
  return printable(parts.join('  '));
}

const shown = (value: string | null | undefined) => (value == null ? '(none)' : value);
