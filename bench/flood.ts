import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { approximateMessageCount } from '../lib/adapters/sqs-queues.js';
import { freePort } from '../local/free-port.js';
import { customerPayload, shopifyHeaders } from '../local/shopify-deliveries.js';
import { DEMO_TENANT } from '../scripts/local-stack/demo-tenant.js';
import { SERVICE_DIR } from '../scripts/local-stack/offline.js';
import { TENANT_SECRET_PREFIX } from '../scripts/local-stack/peers.js';
import { type LocalStack, startLocalStack } from '../scripts/local-stack/stack.js';
import { quantile } from './measure.js';

/**
 * `npm run bench:flood [-- --signed 400 --unsigned 5000 --flood-concurrency 64]`: whether a flood
 * of unsigned requests starves the service, on the whole local stack (serverless-offline, the
 * queue poller and worker, fauxqs, the Secrets Manager endpoint, the Klaviyo sandbox).
 * Signed Shopify deliveries, each an email change of a known customer, are sent one after the
 * other at a few at a time, first alone, then while a flood of unsigned requests is sent: forged
 * Shopify deliveries (a wrong HMAC for the demo shop) and ERP changes for tenants that do not
 * exist. Printed: the signed deliveries' latency (p50/p99) without and with the flood, the changes
 * applied (goal: all), the 5xx answers (goal: 0) and the Secrets Manager reads (goal: bounded by
 * the tenants named, not by the requests). serverless-offline has no API Gateway throttling: this
 * measures the functions' own behaviour under a flood, not the deployed route limits.
 */
const { values } = parseArgs({
  options: {
    signed: { type: 'string', default: '400' },
    unsigned: { type: 'string', default: '5000' },
    'signed-concurrency': { type: 'string', default: '4' },
    'flood-concurrency': { type: 'string', default: '64' },
    'unknown-tenants': { type: 'string', default: '20' },
  },
});
const signed = Number(values.signed);
const unsigned = Number(values.unsigned);
const signedConcurrency = Number(values['signed-concurrency']);
const floodConcurrency = Number(values['flood-concurrency']);
const unknownTenants = Array.from({ length: Number(values['unknown-tenants']) }, (_, i) => `flood-${i}`);

const externalIdOf = (i: number) => String(8_100_000 + i);
const newEmailOf = (i: number) => `flood.${i}.new@example.com`;

interface Tally {
  serverErrors: number;
  byStatus: Map<number, number>;
}
const tally: Tally = { serverErrors: 0, byStatus: new Map() };
function count(status: number) {
  tally.byStatus.set(status, (tally.byStatus.get(status) ?? 0) + 1);
  if (status >= 500) tally.serverErrors++;
}

/** Runs `task(i)` for i in [from, to), `concurrency` at a time. */
async function pool(from: number, to: number, concurrency: number, task: (i: number) => Promise<void>) {
  let next = from;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < to) await task(next++);
    }),
  );
}

/** A signed email change of customer i: its latency, or throws when it is not accepted. */
async function deliverSigned(stack: LocalStack, i: number): Promise<number> {
  const body = customerPayload({ id: externalIdOf(i), email: newEmailOf(i), phone: null });
  const headers = shopifyHeaders(body, {
    secret: DEMO_TENANT.shopifyWebhookSecret,
    shop: DEMO_TENANT.shopDomain,
  });
  const started = performance.now();
  const answer = await fetch(stack.offline.webhookUrl, { method: 'POST', headers, body });
  await answer.arrayBuffer();
  count(answer.status);
  if (answer.status !== 200) throw new Error(`signed delivery ${i} answered ${answer.status}`);
  return performance.now() - started;
}

/** One unsigned request: even i a forged Shopify delivery, odd i an ERP change for a tenant that is none. */
async function sendUnsigned(stack: LocalStack, i: number): Promise<void> {
  const erpUrl = stack.offline.webhookUrl.replace(/shopify$/, 'erp');
  const request =
    i % 2 === 0
      ? (() => {
          const body = customerPayload({
            id: externalIdOf(i),
            email: `forged.${i}@example.com`,
            phone: null,
          });
          const headers = shopifyHeaders(body, {
            secret: 'not-the-shops-secret',
            shop: DEMO_TENANT.shopDomain,
          });
          return fetch(stack.offline.webhookUrl, { method: 'POST', headers, body });
        })()
      : fetch(`${erpUrl}/${unknownTenants[i % unknownTenants.length]}`, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'webhook-id': `msg_flood_${i}`,
            'webhook-timestamp': String(Math.floor(Date.now() / 1000)),
            'webhook-signature': `v1,${Buffer.from(`forged ${i}`).toString('base64')}`,
          },
          body: JSON.stringify({ externalId: externalIdOf(i), email: `forged.${i}@example.com` }),
        });
  try {
    const answer = await request;
    await answer.arrayBuffer();
    count(answer.status);
  } catch {
    count(599); // no answer at all: as bad as a 5xx
  }
}

async function signedLatencies(stack: LocalStack, from: number, to: number): Promise<number[]> {
  const latencies: number[] = [];
  await pool(from, to, signedConcurrency, async (i) => {
    latencies.push(await deliverSigned(stack, i));
  });
  return latencies;
}

const tempDir = await mkdtemp(join(tmpdir(), 'klaviyo-identity-sync-flood-'));
const stack = await startLocalStack({
  peers: {},
  env: { ...process.env, LOG_LEVEL: 'ERROR', POWERTOOLS_METRICS_DISABLED: 'true' },
  httpPort: await freePort(),
  lambdaPort: await freePort(),
  esbuildWorkFolder: relative(SERVICE_DIR, join(tempDir, 'esbuild')),
  onOutput: () => undefined,
  onPollError: (error) => console.error(`[poller] ${error instanceof Error ? error.message : error}`),
});
try {
  const sandbox = stack.peers.klaviyo;
  if (!sandbox) throw new Error('the benchmark needs the Klaviyo sandbox');
  for (let i = 0; i < signed; i++) {
    sandbox.seedProfile({ external_id: externalIdOf(i), email: `flood.${i}.old@example.com` });
  }
  // Warm: one signed delivery loads the intake and reads the demo tenant's secret once.
  await signedLatencies(stack, signed, signed + 1);
  const half = Math.floor(signed / 2);

  console.log(`Signed deliveries alone: ${half}, ${signedConcurrency} at a time…`);
  const alone = await signedLatencies(stack, 0, half);

  console.log(
    `Signed deliveries during a flood of ${unsigned} unsigned requests, ${floodConcurrency} at a time…`,
  );
  let flooding = true;
  const floodStarted = performance.now();
  const flood = pool(0, unsigned, floodConcurrency, (i) => sendUnsigned(stack, i)).finally(() => {
    flooding = false;
  });
  const during = await signedLatencies(stack, half, signed);
  const signedEndedInFlood = flooding;
  await flood;
  const floodSeconds = (performance.now() - floodStarted) / 1000;

  const applied = () =>
    Array.from({ length: signed }, (_, i) => i).filter(
      (i) => sandbox.findProfile({ external_id: externalIdOf(i) })?.email === newEmailOf(i),
    ).length;
  const deadline = Date.now() + 300_000;
  while (applied() < signed && Date.now() < deadline) await sleep(200);
  const parked = await approximateMessageCount(stack.peers.sqs, stack.peers.deadLetterQueueUrl);

  const secretReads = (tenant: string) =>
    stack.peers.secrets.reads(`${TENANT_SECRET_PREFIX}${tenant}/webhook`);
  const demoReads = secretReads(DEMO_TENANT.tenant);
  const unknownReads = unknownTenants.reduce((sum, tenant) => sum + secretReads(tenant), 0);
  const ms = (value: number) => `${value.toFixed(1)} ms`;
  const statuses = [...tally.byStatus.entries()]
    .sort(([a], [b]) => a - b)
    .map(([status, n]) => `${status}: ${n}`)
    .join(', ');

  console.log(`
| Figure                                          | Value |
| ----------------------------------------------- | ----- |
| Signed deliveries alone: p50 / p99              | ${ms(quantile(alone, 0.5))} / ${ms(quantile(alone, 0.99))} |
| Signed deliveries during the flood: p50 / p99   | ${ms(quantile(during, 0.5))} / ${ms(quantile(during, 0.99))}${signedEndedInFlood ? '' : ' (the flood ended first)'} |
| Unsigned requests (flood)                       | ${unsigned} in ${floodSeconds.toFixed(1)} s (${(unsigned / floodSeconds).toFixed(0)}/s) |
| Changes applied                                 | ${applied()} of ${signed} (${parked} parked) |
| 5xx answers (goal 0)                            | ${tally.serverErrors} |
| Secrets Manager reads, demo tenant              | ${demoReads} |
| Secrets Manager reads, ${unknownTenants.length} unknown tenants (ERP) | ${unknownReads} (goal: at most a few per tenant) |
| Answers by status                               | ${statuses} |`);
  if (tally.serverErrors > 0 || applied() < signed) process.exitCode = 1;
} finally {
  await stack.stop();
  await rm(tempDir, { recursive: true, force: true });
}
