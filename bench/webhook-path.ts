import { spawnSync } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';
import { httpApiEvent, lambdaContext } from '../local/lambda-events.js';
import { customerPayload, shopifyHeaders } from '../local/shopify-deliveries.js';
import { DEMO_TENANT } from '../scripts/local-stack/demo-tenant.js';
import { startLocalPeers } from '../scripts/local-stack/peers.js';
import { createQueuePoller } from '../scripts/local-stack/queue-poller.js';

/**
 * `npx tsx bench/webhook-path.ts [--deliveries N] [--concurrency C]`: the Shopify path's figures,
 * all on loopback.
 * 1. Cold start: each handler bundled as serverless.yml bundles it, then imported in fresh Node
 *    processes (the part of a Lambda cold start that is ours).
 * 2. Intake latency: N signed customers/update deliveries to the webhook handler (in-process, real
 *    SDK clients against fauxqs and the Secrets Manager endpoint), C at a time: p50/p95/p99/max.
 * 3. Worker throughput: the queued changes applied to the Klaviyo sandbox (Klaviyo's limits).
 */
const { values } = parseArgs({
  options: {
    deliveries: { type: 'string', default: '500' },
    concurrency: { type: 'string', default: '10' },
    'cold-runs': { type: 'string', default: '5' },
  },
});
const deliveries = Number(values.deliveries);
const concurrency = Number(values.concurrency);

await coldStarts(Number(values['cold-runs']));

const peers = await startLocalPeers();
try {
  Object.assign(process.env, peers.env, {
    POWERTOOLS_LOG_LEVEL: 'SILENT',
    POWERTOOLS_METRICS_DISABLED: 'true',
  });
  const webhook = await import('../functions/shopify-webhook.js');
  const worker = await import('../functions/sync-worker.js');
  const sandbox = peers.klaviyo;
  if (!sandbox) throw new Error('the benchmark needs the Klaviyo sandbox');
  for (let i = 0; i < deliveries; i++) {
    sandbox.seedProfile({ external_id: String(9_000_000 + i), email: `bench.${i}.old@example.com` });
  }

  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < deliveries) {
        const i = next++;
        const body = customerPayload({
          id: String(9_000_000 + i),
          email: `bench.${i}.new@example.com`,
          phone: null,
        });
        const headers = shopifyHeaders(body, { secret: DEMO_TENANT.shopifyWebhookSecret });
        const t0 = performance.now();
        const answer = await webhook.handler(httpApiEvent(body, headers), lambdaContext('shopify-webhook'));
        latencies.push(performance.now() - t0);
        if ((answer as { statusCode?: number }).statusCode !== 200)
          throw new Error(`delivery ${i} was refused`);
      }
    }),
  );
  const intakeSeconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const at = (q: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]?.toFixed(1);
  console.log(
    `\nIntake: ${deliveries} deliveries, ${concurrency} at a time, in ${intakeSeconds.toFixed(2)} s`,
  );
  console.log(`  latency ms: p50 ${at(0.5)}  p95 ${at(0.95)}  p99 ${at(0.99)}  max ${at(1)}`);

  const poller = createQueuePoller({
    sqs: peers.sqs,
    queueUrl: peers.queueUrl,
    queueArn: peers.queueArn,
    invoke: (event) => worker.handler(event, lambdaContext('sync-worker')) as never,
  });
  const workStarted = performance.now();
  let applied = 0;
  while (applied < deliveries) {
    const received = await poller.pollOnce(0);
    if (received === 0) break;
    applied = sandbox.listProfiles().filter((p) => p.email?.endsWith('.new@example.com')).length;
  }
  const workSeconds = (performance.now() - workStarted) / 1000;
  const throttled = sandbox.requests.filter((r) => r.status === 429).length;
  console.log(`Worker: ${applied} of ${deliveries} changes applied in ${workSeconds.toFixed(2)} s`);
  console.log(`  ${(applied / workSeconds).toFixed(1)} changes/s; Klaviyo answered 429 ${throttled} times`);
} finally {
  await peers.stop();
}

async function coldStarts(runs: number) {
  const dir = await mkdtemp(join(tmpdir(), 'klaviyo-identity-sync-bench-'));
  console.log(`Cold start (bundle import in a fresh node process, ${runs} runs, Node ${process.version}):`);
  for (const name of ['shopify-webhook', 'erp-webhook', 'sync-worker']) {
    const outfile = join(dir, `${name}.mjs`);
    // The options serverless.yml gives serverless-esbuild.
    await build({
      entryPoints: [`functions/${name}.ts`],
      outfile,
      bundle: true,
      format: 'esm',
      platform: 'node',
      target: 'node24',
      mainFields: ['module', 'main'],
      banner: {
        js: "import { createRequire as __bannerCreateRequire } from 'node:module'; const require = __bannerCreateRequire(import.meta.url);",
      },
      logLevel: 'error',
    });
    const env = {
      ...process.env,
      IDENTITY_CHANGES_QUEUE_URL: 'http://127.0.0.1:9/q.fifo',
      DEAD_LETTER_QUEUE_URL: 'http://127.0.0.1:9/dlq.fifo',
      SYNC_STATE_TABLE: 'bench',
      AWS_REGION: 'us-east-1',
    };
    const times: number[] = [];
    for (let run = 0; run < runs; run++) {
      const script = `const t=performance.now();await import(${JSON.stringify(outfile)});console.log(performance.now()-t)`;
      const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
        env,
        encoding: 'utf8',
      });
      if (result.status !== 0) throw new Error(`${name}: ${result.stderr}`);
      times.push(Number(result.stdout.trim()));
    }
    times.sort((a, b) => a - b);
    console.log(
      `  ${name.padEnd(16)} median ${times[Math.floor(times.length / 2)]?.toFixed(0)} ms (min ${times[0]?.toFixed(0)})`,
    );
  }
}
