import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { SQSBatchResponse } from 'aws-lambda';
import { lambdaContext } from '../local/lambda-events.js';
import { startLocalPeers } from '../scripts/local-stack/peers.js';
import { createQueuePoller } from '../scripts/local-stack/queue-poller.js';
import { bundleAsDeployed, deployedFunctions, deployedNodeFlags } from './bundle.js';
import { type CustomerChange, shopifyDelivery } from './events.js';
import { buildLambdaHost, startLambdaProcess } from './lambda-process.js';
import { lambdaEnvironment, quantile } from './measure.js';

/**
 * `npm run bench:webhook [-- --deliveries 10000 --concurrency 10 --worker-changes 500]`: the
 * Shopify path's figures, all on loopback, with logs and metrics at the deployed defaults (INFO).
 * 1. Intake latency: N signed customers/update deliveries to the webhook handler in this process
 *    (real SDK clients against fauxqs and the Secrets Manager endpoint), C at a time:
 *    p50/p95/p99/max. Goal: p99 under 50 ms for 10,000.
 * 2. The bundled intake in a process of its own, as in Lambda (bench/lambda-host.ts), one delivery
 *    at a time: its peak memory and log bytes per delivery.
 * 3. The bundled worker in a process of its own, fed by an SQS poller as Lambda's event source
 *    mapping feeds it: the first M queued changes applied to the Klaviyo sandbox (Klaviyo's limits,
 *    paced by the shared quota): changes/s, peak memory (goal: under 100 MiB, for a 128 MB
 *    Lambda), log bytes per change.
 * Each change: a known customer (profile by external_id) whose email changes.
 * `--worker-memory MB` runs the worker at another memory size's heap limits (bench/RESULTS.md,
 * Memory sizes: duration × price at 128, 256 and 512 MB); `--show-log` prints the first log lines.
 */
const { values } = parseArgs({
  options: {
    deliveries: { type: 'string', default: '10000' },
    concurrency: { type: 'string', default: '10' },
    'worker-changes': { type: 'string', default: '500' },
    'intake-process-deliveries': { type: 'string', default: '1000' },
    /** Run the worker at this memory size's heap limits instead of serverless.yml's (128, 256, 512…). */
    'worker-memory': { type: 'string' },
    /** Messages per worker invocation: 10 as a backlog gives, 1 as a trickle does (FIFO: no batching window). */
    'worker-batch': { type: 'string', default: '10' },
    /** Extra Node flags for the worker, after the heap limits (as the command line's last word). */
    'worker-flags': { type: 'string', default: '' },
    /** Run the worker at the share of a CPU Lambda gives its memory size (bench/cpu-share.ts; Linux, root). */
    'worker-cpu-share': { type: 'boolean', default: false },
    /** Print the first log lines of the bundled intake and worker (what the bytes per change are). */
    'show-log': { type: 'boolean', default: false },
  },
});
const deliveries = Number(values.deliveries);
const concurrency = Number(values.concurrency);
const workerChanges = Math.min(deliveries, Number(values['worker-changes']));
const processDeliveries = Number(values['intake-process-deliveries']);
const workerMemory = values['worker-memory'] === undefined ? undefined : Number(values['worker-memory']);
if (workerMemory !== undefined && !(Number.isInteger(workerMemory) && workerMemory >= 128))
  throw new Error(
    `--worker-memory must be a memory size in MB (128 or more), got '${values['worker-memory']}'`,
  );
const MIB = 2 ** 20;

const change = (i: number, run = 'new'): CustomerChange => ({
  externalId: String(9_000_000 + i),
  email: `bench.${i}.${run}@example.com`,
  phone: null,
});

const dir = await mkdtemp(join(tmpdir(), 'klaviyo-identity-sync-webhook-'));
const peers = await startLocalPeers();
const functionEnv = lambdaEnvironment(peers.env);
try {
  const sandbox = peers.klaviyo;
  if (!sandbox) throw new Error('the benchmark needs the Klaviyo sandbox');
  for (let i = 0; i < deliveries + processDeliveries; i++) {
    sandbox.seedProfile({ external_id: change(i).externalId, email: change(i, 'old').email });
  }
  // The deployed log level and metrics; what they write is swallowed (its volume is measured in 2 and 3).
  Object.assign(process.env, peers.env, { LOG_LEVEL: 'INFO' });
  const webhook = await import('../functions/shopify-webhook.js');

  const latencies: number[] = [];
  let next = 0;
  const write = process.stdout.write;
  process.stdout.write = () => true;
  const started = performance.now();
  try {
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < deliveries) {
          const i = next++;
          const event = shopifyDelivery(change(i));
          const t0 = performance.now();
          const answer = await webhook.handler(event, lambdaContext('shopify-webhook'));
          latencies.push(performance.now() - t0);
          if ((answer as { statusCode?: number }).statusCode !== 200)
            throw new Error(`delivery ${i} was refused`);
        }
      }),
    );
  } finally {
    process.stdout.write = write;
  }
  const intakeSeconds = (performance.now() - started) / 1000;
  const at = (q: number) => quantile(latencies, q).toFixed(1);
  console.log(`Intake: ${deliveries} deliveries, ${concurrency} at a time, in ${intakeSeconds.toFixed(2)} s`);
  console.log(
    `  latency ms: p50 ${at(0.5)}  p95 ${at(0.95)}  p99 ${at(0.99)}  max ${at(1)}  (goal: p99 < 50)`,
  );

  const host = await buildLambdaHost(dir);
  const deployed = await deployedFunctions();
  /** The function bundled as deployed, in a process with the heap limits of its memory size. */
  const startBundled = async (name: 'shopify-webhook' | 'sync-worker') => {
    const deployedFn = deployed.find((f) => f.name === name);
    if (!deployedFn) throw new Error(`serverless.yml has no ${name}`);
    const fn =
      name === 'sync-worker' && workerMemory ? { ...deployedFn, memorySize: workerMemory } : deployedFn;
    const lambda = await startLambdaProcess({
      host,
      bundle: (await bundleAsDeployed(fn.entry, join(dir, name))).file,
      functionName: name,
      // Lambda gives the function its own environment; its runtime's heap limits are command-line flags.
      env: { ...functionEnv, ...fn.environment },
      // Node's flags as Lambda gives them, then --worker-flags.
      execArgv: [
        ...deployedNodeFlags(fn),
        ...(name === 'sync-worker' ? String(values['worker-flags']).split(' ').filter(Boolean) : []),
      ],
      ...(name === 'sync-worker' && values['worker-cpu-share'] && { cpuShareOfMemory: fn.memorySize }),
    });
    return { lambda, memorySize: fn.memorySize };
  };
  const footprint = async (
    { lambda: fn, memorySize }: Awaited<ReturnType<typeof startBundled>>,
    per: string,
    count: number,
  ) => {
    const { maxRssBytes, heapUsedBytes } = await fn.usage();
    await fn.stop();
    if (values['show-log']) console.log(fn.logStart().split('\n').slice(0, 8).join('\n'));
    return `at ${memorySize} MB: peak RSS ${(maxRssBytes / MIB).toFixed(1)} MiB, heap in use at the end ${(heapUsedBytes / MIB).toFixed(1)} MiB; log ${(fn.logBytes() / count).toFixed(0)} bytes per ${per}`;
  };

  // 2. The bundled intake, one delivery at a time; these changes go on the queue after the first N.
  const intake = await startBundled('shopify-webhook');
  for (let i = 0; i < processDeliveries; i++) {
    await intake.lambda.invoke(shopifyDelivery(change(deliveries + i)));
  }
  console.log(
    `Bundled intake, ${processDeliveries} deliveries one at a time: ${await footprint(intake, 'delivery', processDeliveries)}`,
  );

  // 3. The bundled worker on the first queued changes.
  const worker = await startBundled('sync-worker');
  let invokedMs = 0;
  const poller = createQueuePoller({
    sqs: peers.sqs,
    queueUrl: peers.queueUrl,
    queueArn: peers.queueArn,
    batchSize: Number(values['worker-batch']),
    invoke: async (event) => {
      const { result, ms } = await worker.lambda.invoke(event);
      invokedMs += ms;
      return result as SQSBatchResponse;
    },
  });
  const workStarted = performance.now();
  let applied = 0;
  while (applied < workerChanges) {
    const received = await poller.pollOnce(0);
    if (received === 0) break;
    applied = sandbox.listProfiles().filter((p) => p.email?.endsWith('.new@example.com')).length;
  }
  const workSeconds = (performance.now() - workStarted) / 1000;
  const throttled = sandbox.requests.filter((r) => r.status === 429).length;
  console.log(
    `Bundled worker, batches of ${values['worker-batch']}: ${applied} changes applied in ${workSeconds.toFixed(2)} s (${((workSeconds * 1000) / applied).toFixed(1)} ms a change)`,
  );
  console.log(
    `  ${(applied / workSeconds).toFixed(1)} changes/s; invocations ${(invokedMs / applied).toFixed(1)} ms a change${values['worker-cpu-share'] ? ` at ${worker.memorySize} MB's share of a CPU` : ' on a full core'}; Klaviyo answered 429 ${throttled} times`,
  );
  console.log(`  ${await footprint(worker, 'change', applied)} (goal: peak under 100 MiB)`);
} finally {
  await peers.stop();
  await rm(dir, { recursive: true, force: true });
}
