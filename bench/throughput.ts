import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { type AttributeValue, QueryCommand } from '@aws-sdk/client-dynamodb';
import { quotaLedgerKey } from '../lib/adapters/dynamo-request-quota.js';
import { approximateMessageCount } from '../lib/adapters/sqs-queues.js';
import { KLAVIYO_PROFILE_LIMITS } from '../lib/klaviyo/limits.js';
import { freePort } from '../local/free-port.js';
import type { RecordedRequest } from '../local/klaviyo-sandbox.js';
import { customerPayload, shopifyHeaders } from '../local/shopify-deliveries.js';
import { DEMO_TENANT } from '../scripts/local-stack/demo-tenant.js';
import { SERVICE_DIR } from '../scripts/local-stack/offline.js';
import { type LocalStack, startLocalStack } from '../scripts/local-stack/stack.js';
import { itemBytes, seededRandom } from './measure.js';
import { renderRequestPlot } from './plot.js';
import { byEndpoint, endpointOf, filterValues, mostInAnySpan } from './requests-by-endpoint.js';

/**
 * `npm run bench:throughput [-- --deliveries N --workers 1,3]`: the whole local stack end to end
 * (signed Shopify webhooks over HTTP → serverless-offline intake → SQS FIFO → the worker, as many
 * batches at once as workers → the Klaviyo sandbox enforcing Klaviyo's limits), on traffic shaped
 * like a store's: 50% customers/update that change no identifier (known customers), 30% email
 * changes of known customers, 10% customers whose profile Klaviyo knows only by email, 10% new
 * customers. Known customers are made known first (one delivery each, not measured), as a running
 * service would have them. Prints Klaviyo requests per delivery by class and by endpoint, elapsed
 * time against the ideal the limits allow, 429s, the busiest second and minute per endpoint, and
 * writes a PNG of requests over time per endpoint against the limits.
 */
const { values } = parseArgs({
  options: {
    deliveries: { type: 'string', default: '1200' },
    workers: { type: 'string', default: '1,3' },
    /** Default: bench/throughput.png for the mix, bench/throughput-burst.png for bursts. */
    plot: { type: 'string' },
    /** `burst`: N email changes of known customers at once, then two such bursts 20 s apart. */
    mode: { type: 'string', default: 'mix' },
    burst: { type: 'string', default: '500' },
  },
});
const BURST = Number(values.burst);
const BURST_GAP_MS = 20_000;
const DELIVERIES = Number(values.deliveries);
const WORKER_COUNTS = String(values.workers).split(',').map(Number);
const STEADY = KLAVIYO_PROFILE_LIMITS.perMinute;

type CustomerClass = 'no-op' | 'email change' | 'email-only profile' | 'new customer';
const CLASSES: CustomerClass[] = ['no-op', 'email change', 'email-only profile', 'new customer'];

interface Customer {
  externalId: string;
  class: CustomerClass;
  email: string;
  phone: string;
  /** The email the last delivery carries. */
  finalEmail: string;
  deliveries: number;
}

/** The population for `deliveries` deliveries; no-op customers get two deliveries each. */
function population(deliveries: number, run: number): Customer[] {
  const counts: Record<CustomerClass, number> = {
    'no-op': Math.round((deliveries * 0.5) / 2),
    'email change': Math.round(deliveries * 0.3),
    'email-only profile': Math.round(deliveries * 0.1),
    'new customer': Math.round(deliveries * 0.1),
  };
  const customers: Customer[] = [];
  let n = 0;
  for (const kind of CLASSES) {
    for (let i = 0; i < counts[kind]; i++, n++) {
      const email = `bench.r${run}.c${n}@example.com`;
      customers.push({
        externalId: String(8_100_000_000_000 + run * 100_000 + n),
        class: kind,
        email,
        phone: `+1415${String(5_000_000 + run * 10_000 + n).padStart(7, '0')}`,
        finalEmail: kind === 'email change' ? `bench.r${run}.c${n}.new@example.com` : email,
        deliveries: kind === 'no-op' ? 2 : 1,
      });
    }
  }
  return customers;
}

/** Each customer's deliveries in order, the customers interleaved at random (seeded). */
function deliveryPlan(customers: Customer[]): { customer: Customer; email: string; at: string }[] {
  const random = seededRandom(42);
  const queues = customers.map((customer) =>
    Array.from({ length: customer.deliveries }, (_, i) => ({ customer, email: customer.finalEmail, i })),
  );
  const plan: { customer: Customer; email: string; at: string }[] = [];
  const start = Date.parse('2026-12-01T12:00:00Z');
  while (queues.some((queue) => queue.length > 0)) {
    const open = queues.filter((queue) => queue.length > 0);
    const next = open[Math.floor(random() * open.length)]?.shift();
    if (!next) break;
    plan.push({
      customer: next.customer,
      email: next.email,
      at: new Date(start + plan.length * 1000).toISOString(),
    });
  }
  return plan;
}

async function deliver(stack: LocalStack, customer: Customer, email: string, updatedAt: string) {
  const body = customerPayload({ id: customer.externalId, email, phone: customer.phone, updatedAt });
  const headers = shopifyHeaders(body, {
    secret: DEMO_TENANT.shopifyWebhookSecret,
    shop: DEMO_TENANT.shopDomain,
  });
  for (let attempt = 1; ; attempt++) {
    const answer = await fetch(stack.offline.webhookUrl, { method: 'POST', headers, body });
    if (answer.status === 200) return;
    if (attempt === 3) throw new Error(`delivery for ${customer.externalId} answered ${answer.status}`);
  }
}

async function deliverAll(stack: LocalStack, plan: ReturnType<typeof deliveryPlan>, concurrency = 16) {
  const next = 0;
  // One customer's deliveries go out in order: Shopify's order is updated_at, and ours the queue's.
  const inFlight = new Set<string>();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < plan.length) {
        const index = plan.findIndex((item, i) => i >= next && !inFlight.has(item.customer.externalId));
        if (index < 0) {
          await sleep(5);
          continue;
        }
        const [item] = plan.splice(index, 1);
        if (!item) continue;
        inFlight.add(item.customer.externalId);
        await deliver(stack, item.customer, item.email, item.at);
        inFlight.delete(item.customer.externalId);
      }
    }),
  );
}

async function settled(stack: LocalStack, done: () => boolean, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const depth = await approximateMessageCount(stack.peers.sqs, stack.peers.queueUrl);
    if (depth === 0 && done()) return Date.now();
    await sleep(100);
  }
  throw new Error('the changes did not all apply in time');
}

/** Requests per customer class: a lookup's cost is shared by the customers it asked about. */
function attribute(requests: RecordedRequest[], customers: Customer[], profileOwner: Map<string, string>) {
  const byValue = new Map<string, Customer>();
  for (const customer of customers) {
    for (const value of [customer.externalId, customer.email, customer.finalEmail, customer.phone])
      byValue.set(value.toLowerCase(), customer);
  }
  const byExternalId = new Map(customers.map((customer) => [customer.externalId, customer]));
  const cost = new Map<CustomerClass, number>(CLASSES.map((kind) => [kind, 0]));
  const add = (customer: Customer | undefined, share: number) => {
    if (customer) cost.set(customer.class, (cost.get(customer.class) ?? 0) + share);
  };
  for (const request of requests) {
    const endpoint = endpointOf(request);
    if (endpoint === 'GET /api/profiles') {
      const asked = [
        ...new Set(
          filterValues(request.query.filter ?? '').flatMap((value) => byValue.get(value.toLowerCase()) ?? []),
        ),
      ];
      for (const customer of asked) add(customer, 1 / asked.length);
    } else if (endpoint === 'POST /api/profile-import') {
      const externalId = (request.body as { data?: { attributes?: { external_id?: string } } })?.data
        ?.attributes?.external_id;
      add(byExternalId.get(externalId ?? ''), 1);
    } else {
      const id = request.path.split('/').at(-1) ?? '';
      add(byExternalId.get(profileOwner.get(id) ?? ''), 1);
    }
  }
  return cost;
}

interface RunFigures {
  workers: number;
  elapsedSeconds: number;
  requests: RecordedRequest[];
  startedAt: number;
}

/**
 * The local stack for one run, quiet, with `workers` worker invocations at once and Klaviyo's
 * rate-limit windows starting at `phaseMs`; stopped, and its build folder removed, after `body`.
 */
async function withStack<T>(
  label: string,
  workers: number,
  phaseMs: number | 'random',
  body: (stack: LocalStack) => Promise<T>,
): Promise<T> {
  const tempDir = await mkdtemp(join(tmpdir(), `klaviyo-identity-sync-${label}-`));
  const stack = await startLocalStack({
    peers: { klaviyoRateLimitPhaseMs: phaseMs },
    env: { ...process.env, LOG_LEVEL: 'ERROR', POWERTOOLS_METRICS_DISABLED: 'true' },
    httpPort: await freePort(),
    lambdaPort: await freePort(),
    esbuildWorkFolder: relative(SERVICE_DIR, join(tempDir, 'esbuild')),
    workerConcurrency: workers,
    onOutput: () => undefined,
    onPollError: (error) => console.error(`[poller] ${error instanceof Error ? error.message : error}`),
  });
  try {
    return await body(stack);
  } finally {
    await stack.stop();
    await rm(tempDir, { recursive: true, force: true });
  }
}

async function run(workers: number, runIndex: number): Promise<RunFigures> {
  // Klaviyo's windows have a phase of their own: the sandbox's start at a random one.
  return withStack('throughput', workers, 'random', async (stack) => {
    const sandbox = stack.peers.klaviyo;
    if (!sandbox) throw new Error('the benchmark needs the Klaviyo sandbox');
    const customers = population(DELIVERIES, runIndex);
    for (const customer of customers) {
      if (customer.class === 'new customer') continue;
      sandbox.seedProfile({
        email: customer.email,
        phone_number: customer.phone,
        ...(customer.class === 'email-only profile' ? {} : { external_id: customer.externalId }),
      });
    }
    // Known customers are known to the service as they would be after running a while.
    const known = customers.filter((c) => c.class === 'no-op' || c.class === 'email change');
    await deliverAll(
      stack,
      known.map((customer) => ({ customer, email: customer.email, at: '2026-12-01T11:00:00.000Z' })),
    );
    await settled(stack, () => true, 300_000);
    sandbox.clearRequests();
    const ledger = await measureLedger(stack);

    const plan = deliveryPlan(customers);
    console.log(
      `\n${workers} worker(s): ${plan.length} deliveries (${known.length} known customers warmed up)`,
    );
    const startedAt = Date.now();
    await deliverAll(stack, plan);
    const intakeSeconds = (Date.now() - startedAt) / 1000;
    const done = () =>
      customers.every((customer) => {
        const profile = sandbox.findProfile({ external_id: customer.externalId });
        return profile?.email === customer.finalEmail;
      });
    const endedAt = await settled(stack, done, 900_000);
    const parked = await approximateMessageCount(stack.peers.sqs, stack.peers.deadLetterQueueUrl);
    const requests = sandbox.requests.filter((request) => request.receivedAt >= startedAt);
    const profileOwner = new Map(
      sandbox.listProfiles().map((profile) => [profile.id, profile.external_id ?? '']),
    );
    report(customers, requests, profileOwner, (endedAt - startedAt) / 1000, intakeSeconds, parked);
    await ledger.report(requests.length);
    return { workers, elapsedSeconds: (endedAt - startedAt) / 1000, requests, startedAt };
  });
}

function report(
  customers: Customer[],
  requests: RecordedRequest[],
  profileOwner: Map<string, string>,
  elapsedSeconds: number,
  intakeSeconds: number,
  parked: number,
) {
  const deliveriesOf = (kind: CustomerClass) =>
    customers.filter((c) => c.class === kind).reduce((sum, c) => sum + c.deliveries, 0);
  const cost = attribute(requests, customers, profileOwner);
  console.log('  Klaviyo requests per delivery, by class:');
  for (const kind of CLASSES) {
    console.log(
      `    ${kind.padEnd(20)} ${String(deliveriesOf(kind)).padStart(5)} deliveries  ${((cost.get(kind) ?? 0) / deliveriesOf(kind)).toFixed(3)}`,
    );
  }
  printEndpoints(requests);
  const writes = customers.filter((c) => c.class !== 'no-op').length;
  const patches = customers.filter(
    (c) => c.class === 'email change' || c.class === 'email-only profile',
  ).length;
  const ideal = (writes / STEADY) * 60;
  const idealByEndpoint = (Math.max(patches, writes - patches) / STEADY) * 60;
  const throttled = requests.filter((request) => request.status === 429).length;
  console.log(
    `  Total: ${requests.length} requests for ${customers.reduce((s, c) => s + c.deliveries, 0)} deliveries`,
  );
  console.log(`  Elapsed: ${elapsedSeconds.toFixed(1)} s (webhooks sent in ${intakeSeconds.toFixed(1)} s)`);
  console.log(
    `  Ideal (${writes} writes ÷ ${STEADY}/min): ${ideal.toFixed(1)} s → ratio ${(ideal / elapsedSeconds).toFixed(2)}; ` +
      `per-endpoint ideal (busiest endpoint's writes ÷ ${STEADY}/min): ${idealByEndpoint.toFixed(1)} s → ratio ${(idealByEndpoint / elapsedSeconds).toFixed(2)}`,
  );
  console.log(
    `  429s: ${throttled} (${((100 * throttled) / Math.max(1, requests.length)).toFixed(2)}% of requests); parked: ${parked}`,
  );
}

const LEDGER_ENDPOINTS = ['GET /api/profiles', 'PATCH /api/profiles/{id}', 'POST /api/profile-import'];

async function ledgerItems(stack: LocalStack) {
  const items: Record<string, AttributeValue>[] = [];
  for (const endpoint of LEDGER_ENDPOINTS) {
    const { Items = [] } = await stack.peers.dynamodb.send(
      new QueryCommand({
        TableName: stack.peers.env.SYNC_STATE_TABLE,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': quotaLedgerKey(DEMO_TENANT.tenant, endpoint).pk },
      }),
    );
    items.push(...Items);
  }
  return items;
}

/**
 * The quota ledger's writes so far: successful ones (each bumps an item's version) and those that
 * lost a race to another holder's (the ledger keeps their sum); each costs write units by the
 * item's size (sampleLedgerSizes).
 */
interface LedgerTally {
  writes: number;
  contended: number;
}

async function ledgerTally(stack: LocalStack): Promise<LedgerTally> {
  const items = await ledgerItems(stack);
  return {
    writes: items.reduce((sum, item) => sum + Number(item.version?.N ?? 0), 0),
    contended: items.reduce((sum, item) => sum + Number(item.contended?.N ?? 0), 0),
  };
}

/**
 * Samples the ledger items every 250 ms until stopped: the write units (1 KB each) a write took on
 * average, over the item versions seen, and the largest item.
 */
function sampleLedgerSizes(stack: LocalStack) {
  const units: number[] = [];
  let largest = 0;
  const seen = new Set<string>();
  let running = true;
  const sampling = (async () => {
    while (running) {
      for (const item of await ledgerItems(stack).catch(() => [])) {
        const version = `${item.pk?.S}@${item.version?.N}`;
        if (seen.has(version)) continue;
        seen.add(version);
        const bytes = itemBytes(item);
        largest = Math.max(largest, bytes);
        units.push(Math.max(1, Math.ceil(bytes / 1024)));
      }
      await sleep(250);
    }
  })();
  return async () => {
    running = false;
    await sampling;
    const meanUnits = units.length ? units.reduce((a, b) => a + b, 0) / units.length : 1;
    return { meanUnits, largest };
  };
}

/**
 * Starts counting the ledger's writes (the tally now, item sizes sampled from here on); `report`
 * prints one line: writes, lost races and write units per Klaviyo request since the start.
 */
async function measureLedger(stack: LocalStack) {
  const before = await ledgerTally(stack);
  const stopSampling = sampleLedgerSizes(stack);
  return {
    async report(requests: number) {
      const sizes = await stopSampling();
      const after = await ledgerTally(stack);
      const writes = after.writes - before.writes;
      const contended = after.contended - before.contended;
      const perRequest = (n: number) => (n / Math.max(1, requests)).toFixed(3);
      console.log(
        `  Quota ledger: ${writes} writes + ${contended} lost races for ${requests} Klaviyo requests → ` +
          `${perRequest(writes)} writes (${perRequest(writes + contended)} with lost races) per request; ` +
          `items up to ${sizes.largest} bytes, ${sizes.meanUnits.toFixed(2)} write units a write → ` +
          `${perRequest((writes + contended) * sizes.meanUnits)} write units per request`,
      );
    },
  };
}

/** Per endpoint: requests, 429s, and the most in any second and in any minute. */
function printEndpoints(requests: RecordedRequest[]) {
  console.log('  By endpoint:                       requests  429s  busiest second  busiest minute');
  for (const [endpoint, list] of [...byEndpoint(requests)].sort()) {
    const times = list.map((request) => request.receivedAt).sort((a, b) => a - b);
    console.log(
      `    ${endpoint.padEnd(32)} ${String(list.length).padStart(8)} ${String(list.filter((r) => r.status === 429).length).padStart(5)} ${String(mostInAnySpan(times, 1_000)).padStart(15)} ${String(mostInAnySpan(times, 60_000)).padStart(15)}`,
    );
  }
}

/**
 * Bursts of email changes of known customers (one PATCH each): `bursts` of BURST deliveries,
 * BURST_GAP_MS apart, each sent as fast as the intake takes them. Prints per burst the time from
 * its first delivery until all its changes applied, and the windows' figures.
 */
async function burstRun(workers: number, bursts: number, runIndex: number): Promise<RunFigures> {
  const phaseMs = Math.floor(Math.random() * 60_000);
  return withStack('burst', workers, phaseMs, async (stack) => {
    const sandbox = stack.peers.klaviyo;
    if (!sandbox) throw new Error('the benchmark needs the Klaviyo sandbox');
    const groups = Array.from({ length: bursts }, (_, b) =>
      population(BURST / 0.3, runIndex * 10 + b)
        .filter((customer) => customer.class === 'email change')
        .slice(0, BURST),
    );
    const customers = groups.flat();
    for (const customer of customers)
      sandbox.seedProfile({
        email: customer.email,
        phone_number: customer.phone,
        external_id: customer.externalId,
      });
    await deliverAll(
      stack,
      customers.map((customer) => ({ customer, email: customer.email, at: '2026-12-01T11:00:00.000Z' })),
    );
    await settled(stack, () => true, 300_000);
    // The warm-up made lookups only: the bursts' endpoint (PATCH) starts with its windows empty.
    sandbox.clearRequests();
    const ledger = await measureLedger(stack);
    console.log(
      `\n${workers} worker(s): ${bursts} burst(s) of ${BURST} email changes of known customers, ${BURST_GAP_MS / 1000} s apart (sandbox windows at phase ${phaseMs} ms)`,
    );
    const startedAt = Date.now();
    const applied = (group: Customer[]) => () =>
      group.every(
        (customer) =>
          sandbox.findProfile({ external_id: customer.externalId })?.email === customer.finalEmail,
      );
    const finished = await Promise.all(
      groups.map(async (group, b) => {
        await sleep(startedAt + b * BURST_GAP_MS - Date.now());
        const firstDelivery = Date.now();
        await deliverAll(
          stack,
          group.map((customer) => ({ customer, email: customer.finalEmail, at: '2026-12-01T12:00:00.000Z' })),
          50,
        );
        const end = await settled(stack, applied(group), 900_000);
        return { firstDelivery, end };
      }),
    );
    const requests = sandbox.requests.filter((request) => request.receivedAt >= startedAt);
    for (const [b, { firstDelivery, end }] of finished.entries())
      console.log(
        `  Burst ${b + 1}: all ${BURST} applied ${((end - firstDelivery) / 1000).toFixed(1)} s after its first delivery`,
      );
    printEndpoints(requests);
    await ledger.report(requests.length);
    const elapsed = (Math.max(...finished.map((f) => f.end)) - startedAt) / 1000;
    return { workers, elapsedSeconds: elapsed, requests, startedAt };
  });
}

const figures: RunFigures[] = [];
for (const [index, workers] of WORKER_COUNTS.entries()) {
  if (values.mode === 'burst') {
    figures.push(await burstRun(workers, 1, index * 2));
    figures.push(await burstRun(workers, 2, index * 2 + 1));
  } else figures.push(await run(workers, index));
}
const png = renderRequestPlot(
  figures.map((figure) => ({
    title: `${figure.workers} worker(s): ${values.mode === 'burst' ? `bursts of ${BURST}` : `${DELIVERIES} deliveries`} in ${figure.elapsedSeconds.toFixed(1)} s`,
    requests: figure.requests.map((request) => ({
      endpoint: endpointOf(request),
      seconds: (request.receivedAt - figure.startedAt) / 1000,
    })),
  })),
  { perSecond: KLAVIYO_PROFILE_LIMITS.perSecond, perMinute: STEADY },
);
const plotPath =
  values.plot ?? (values.mode === 'burst' ? 'bench/throughput-burst.png' : 'bench/throughput.png');
await writeFile(plotPath, png);
console.log(`\nPlot: ${plotPath}`);
