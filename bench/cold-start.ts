import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SQSBatchResponse } from 'aws-lambda';
import { lambdaContext } from '../local/lambda-events.js';
import { type LocalPeers, startLocalPeers } from '../scripts/local-stack/peers.js';
import { createQueuePoller } from '../scripts/local-stack/queue-poller.js';
import {
  type Bundle,
  bundleAsDeployed,
  type DeployedFunction,
  deployedFunctions,
  deployedNodeFlags,
} from './bundle.js';
import { accepted, type CustomerChange, INTAKE_EVENTS, shopifyDelivery } from './events.js';
import { buildLambdaHost, type LambdaProcess, startLambdaProcess } from './lambda-process.js';
import { lambdaEnvironment } from './measure.js';

/**
 * What bench/cold-load.ts and bench/cold-profile.ts share: the functions bundled as serverless.yml
 * bundles them (and the worker's klaviyo-api twin), the local peers, and each function's first
 * invocation in a fresh process. First invocations: a signed delivery to each intake; one queued
 * email change to the worker, of a customer Klaviyo has by external_id (secret read, quota write,
 * state read, GET, PATCH, state and audit writes).
 */
export interface ColdStarts {
  /** Every function serverless.yml deploys, bundled; the worker's twin last. */
  targets: ColdStartTarget[];
  /** Starts `target` in a fresh process as Lambda would (deployedNodeFlags, its environment), and `execArgv`. */
  start(target: ColdStartTarget, execArgv?: string[]): Promise<LambdaProcess>;
  /** The first invocation of `fn`: its duration in the child, after checking it did the whole job. */
  firstInvocation(target: ColdStartTarget, fn: LambdaProcess): Promise<number>;
  close(): Promise<void>;
}

export interface ColdStartTarget extends DeployedFunction {
  label: string;
  bundle: Bundle;
}

/** The worker: its first invocation is a batch from the queue. */
export const WORKER = 'sync-worker';

export async function prepareColdStarts(): Promise<ColdStarts> {
  const dir = await mkdtemp(join(tmpdir(), 'klaviyo-identity-sync-cold-'));
  const peers = await startLocalPeers();
  const close = async () => {
    await peers.stop();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    return await prepare(dir, peers, close);
  } catch (error) {
    await close();
    throw error;
  }
}

async function prepare(dir: string, peers: LocalPeers, close: () => Promise<void>): Promise<ColdStarts> {
  const { klaviyo } = peers;
  if (!klaviyo) throw new Error('the benchmark needs the Klaviyo sandbox');
  const host = await buildLambdaHost(dir);
  const targets: ColdStartTarget[] = [];
  for (const fn of await deployedFunctions()) {
    targets.push({ ...fn, label: fn.name, bundle: await bundleAsDeployed(fn.entry, join(dir, fn.name)) });
  }
  const worker = targets.find((target) => target.name === WORKER);
  if (!worker) throw new Error(`serverless.yml has no ${WORKER}`);
  targets.push({
    ...worker,
    label: `${WORKER}, klaviyo-api twin`,
    bundle: await bundleAsDeployed(worker.entry, join(dir, `${WORKER}-sdk-twin`), {
      importer: /lib\/composition\.ts$/,
      path: /\/klaviyo\/client\.js$/,
      with: 'bench/sdk-twin/klaviyo-client.ts',
    }),
  });
  const env = lambdaEnvironment(peers.env);

  // The worker's changes are queued by the Shopify intake in this process (not measured).
  Object.assign(process.env, peers.env, {
    POWERTOOLS_LOG_LEVEL: 'SILENT',
    POWERTOOLS_METRICS_DISABLED: 'true',
  });
  const intake = await import('../functions/shopify-webhook.js');
  const pollerFor = (invoke: Parameters<typeof createQueuePoller>[0]['invoke']) =>
    createQueuePoller({ sqs: peers.sqs, queueUrl: peers.queueUrl, queueArn: peers.queueArn, invoke });
  // What an intake under test queued is not the worker's: taken off the queue.
  const settle = pollerFor(async () => ({ batchItemFailures: [] }));

  let customers = 0;
  const nextCustomer = (): CustomerChange => {
    const n = customers++;
    return {
      externalId: String(7_100_000_000 + n),
      email: `cold.${n}.new@example.com`,
      phone: `+1415555${String(n % 10_000).padStart(4, '0')}`,
    };
  };

  const firstInvocation = async ({ name, label }: ColdStartTarget, fn: LambdaProcess): Promise<number> => {
    const change = nextCustomer();
    if (name !== WORKER) {
      const eventOf = INTAKE_EVENTS[name];
      if (!eventOf) throw new Error(`no first event for ${name}: add one to bench/events.ts`);
      const { result, ms } = await fn.invoke(eventOf(change));
      if (!accepted(result)) throw new Error(`${label} answered ${JSON.stringify(result)}`);
      if ((await settle.pollOnce(0)) !== 1) throw new Error(`${label} queued nothing`);
      return ms;
    }
    klaviyo.seedProfile({
      external_id: change.externalId,
      email: change.email.replace('.new@', '.old@'),
      phone_number: change.phone,
    });
    await intake.handler(shopifyDelivery(change), lambdaContext('shopify-webhook'));
    let invocationMs = Number.NaN;
    await pollerFor(async (event) => {
      const { result, ms } = await fn.invoke(event);
      invocationMs = ms;
      return result as SQSBatchResponse;
    }).pollOnce(0);
    const profile = klaviyo.listProfiles().find((p) => p.external_id === change.externalId);
    if (profile?.email !== change.email) throw new Error(`${label} did not apply the change`);
    return invocationMs;
  };

  return {
    targets,
    start: (target, execArgv = []) =>
      startLambdaProcess({
        host,
        bundle: target.bundle.file,
        functionName: target.name,
        // As Lambda starts it: the function's own environment, Node's flags as deployed.
        env: { ...env, ...target.environment },
        execArgv: [...deployedNodeFlags(target), ...execArgv],
      }),
    firstInvocation,
    close,
  };
}
