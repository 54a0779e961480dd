import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { identitySync } from '../../cli/identity-sync.js';
import { DEMO_TENANT } from '../../scripts/local-stack/demo-tenant.js';
import { putTenantSecrets, TENANT_SECRET_PREFIX } from '../../scripts/local-stack/peers.js';
import { captureIo } from '../support/cli.js';
import { type Harness, startHarness } from '../support/harness.js';

/**
 * `identity-sync doctor` against the local peers (fauxqs, dynalite, the Secrets Manager endpoint,
 * the Klaviyo sandbox) and the real Shopify webhook handler, served over HTTP at the route the
 * HTTP API has.
 */
let harness: Harness;
let api: Server;
let webhookUrl: string;

beforeAll(async () => {
  harness = await startHarness();
  api = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', async () => {
      if (request.method !== 'POST' || request.url !== '/webhooks/shopify') {
        response.writeHead(404).end('{"message":"Not Found"}');
        return;
      }
      const headers = Object.fromEntries(
        Object.entries(request.headers).map(([name, value]) => [name, String(value)]),
      );
      const answer = await harness.deliver(Buffer.concat(chunks).toString(), headers);
      response.writeHead(answer.statusCode, { 'content-type': 'application/json' });
      response.end(JSON.stringify(answer.body));
    });
  });
  await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', resolve));
  webhookUrl = `http://127.0.0.1:${(api.address() as AddressInfo).port}/webhooks/shopify`;
});
afterAll(async () => {
  await new Promise((resolve) => api?.close(resolve));
  await harness?.stop();
});

async function runDoctor(...args: string[]) {
  const { io, written } = captureIo({ ...harness.peers.env, SHOPIFY_WEBHOOK_URL: webhookUrl });
  const exitCode = await identitySync(['doctor', ...args], io);
  return { exitCode, lines: written.stdout.split('\n'), ...written };
}

const lineOf = (lines: string[], check: string) =>
  // Two spaces after the name: `webhook` is not `webhook secret`.
  lines.find((line) => new RegExp(`^ {2}(ok|FAIL|skip) +${check}  `).test(line)) ?? `(no ${check} line)`;

describe('identity-sync doctor', () => {
  it('passes every check for the demo tenant of the local stack', async () => {
    const { exitCode, lines, stdout } = await runDoctor();
    expect(stdout).toMatch(/^Checks for tenant demo:\n/);
    for (const check of [
      'tenant secret',
      'webhook secret',
      'Klaviyo key',
      'queue',
      'dead-letter queue',
      'table',
      'webhook',
    ]) {
      expect(lineOf(lines, check), stdout).toMatch(/^ {2}ok /);
    }
    expect(lineOf(lines, 'Klaviyo key')).toMatch(/accepted; it read a page of profiles/);
    expect(lineOf(lines, 'webhook')).toMatch(/answers an unsigned delivery with 401/);
    expect(stdout).toMatch(/No check failed: tenant demo is ready\.\n$/);
    expect(exitCode).toBe(0);
    // One request to Klaviyo, a read.
    expect(harness.peers.klaviyo?.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      'GET /api/profiles',
    ]);
  });

  it('fails a key Klaviyo refuses, and says what to do', async () => {
    putTenantSecrets(harness.peers.secrets, 'revoked', {
      klaviyoPrivateKey: 'pk_revoked_key',
      shopifyWebhookSecrets: [DEMO_TENANT.shopifyWebhookSecret],
    });
    const { exitCode, lines } = await runDoctor('--tenant', 'revoked');
    expect(lineOf(lines, 'tenant secret')).toMatch(/^ {2}ok /);
    expect(lineOf(lines, 'Klaviyo key')).toMatch(
      /^ {2}FAIL +Klaviyo key +refused \(401.*\): put a valid private key \(pk_…\) in the secret's klaviyoPrivateKey$/,
    );
    expect(exitCode).toBe(1);
  });

  it('fails a tenant without a secret, naming the secret it looked for', async () => {
    const { exitCode, lines, stdout } = await runDoctor('--tenant', 'nobody');
    expect(lineOf(lines, 'tenant secret')).toMatch(
      `FAIL  tenant secret      ${TENANT_SECRET_PREFIX}nobody/klaviyo does not exist: create it`,
    );
    expect(lineOf(lines, 'webhook secret')).toMatch(
      `FAIL  webhook secret     ${TENANT_SECRET_PREFIX}nobody/webhook does not exist: create it`,
    );
    expect(lineOf(lines, 'Klaviyo key')).toMatch(/FAIL .* not tried: the tenant secret is needed first/);
    expect(stdout).toMatch(/\n3 of 7 checks failed\.\n$/);
    expect(exitCode).toBe(1);
  });

  it('fails a queue and a webhook URL that do not answer as they should', async () => {
    const sqs = new URL(harness.peers.queueUrl);
    const { exitCode, lines } = await runDoctor(
      '--queue-url',
      `${sqs.origin}/000000000000/no-such-queue.fifo`,
      '--webhook-url',
      webhookUrl.replace(/shopify$/, 'shopfiy'),
    );
    expect(lineOf(lines, 'queue')).toMatch(
      /FAIL .*no-such-queue\.fifo does not answer \(.+\): check the URL/,
    );
    expect(lineOf(lines, 'dead-letter queue')).toMatch(/^ {2}ok /);
    expect(lineOf(lines, 'webhook')).toMatch(/FAIL .*answered 404: no such route/);
    expect(exitCode).toBe(1);
  });

  it('skips the webhook when it has no URL, without failing', async () => {
    const { io, written } = captureIo(harness.peers.env);
    expect(await identitySync(['doctor'], io)).toBe(0);
    expect(lineOf(written.stdout.split('\n'), 'webhook')).toMatch(/^ {2}skip +webhook +no URL given/);
  });
});
