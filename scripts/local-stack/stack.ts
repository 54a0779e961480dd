import { lambdaInvoker, type Offline, startOffline } from './offline.js';
import { type LocalPeers, type LocalPeersOptions, startLocalPeers } from './peers.js';
import { createQueuePoller, type QueuePoller } from './queue-poller.js';

/**
 * The whole local stack as `npm start` runs it: the peers, serverless-offline with the peers' env,
 * and the queue poller invoking the worker through serverless-offline's Lambda endpoint.
 */
export interface LocalStackOptions {
  peers: LocalPeersOptions;
  /** The environment serverless-offline starts in, whose settings reach the functions. Default: this process's. */
  env?: NodeJS.ProcessEnv;
  httpPort: number;
  lambdaPort: number;
  esbuildWorkFolder?: string;
  /** Each line serverless-offline prints. */
  onOutput?: (line: string) => void;
  /** A batch that failed as a whole, or a poll that failed. */
  onPollError?: (error: unknown) => void;
  /** Worker batches at once; default WORKER_MAX_CONCURRENCY (5), as the SQS trigger is capped in AWS. */
  workerConcurrency?: number;
}

/** The deployed trigger's cap (serverless.yml: maximumConcurrency), read the same way. */
function workerConcurrencyOf(env: NodeJS.ProcessEnv = process.env): number {
  const value = env.WORKER_MAX_CONCURRENCY;
  if (value === undefined || value === '') return 5;
  const parsed = Number(value);
  // Lambda's SQS trigger takes 2 to 1000.
  if (!Number.isInteger(parsed) || parsed < 2 || parsed > 1000) {
    throw new Error(`WORKER_MAX_CONCURRENCY must be a whole number from 2 to 1000, got '${value}'`);
  }
  return parsed;
}

export interface LocalStack {
  peers: LocalPeers;
  offline: Offline;
  poller: QueuePoller;
  stop(): Promise<void>;
}

export async function startLocalStack(options: LocalStackOptions): Promise<LocalStack> {
  const peers = await startLocalPeers(options.peers);
  let offline: Offline;
  try {
    offline = await startOffline({
      env: peers.env,
      baseEnv: options.env,
      httpPort: options.httpPort,
      lambdaPort: options.lambdaPort,
      esbuildWorkFolder: options.esbuildWorkFolder,
      onOutput: options.onOutput,
    });
  } catch (error) {
    await peers.stop();
    throw error;
  }
  const poller = createQueuePoller({
    sqs: peers.sqs,
    queueUrl: peers.queueUrl,
    queueArn: peers.queueArn,
    region: peers.env.AWS_REGION,
    invoke: lambdaInvoker(offline.lambdaUrl),
    onError: options.onPollError,
    concurrency: options.workerConcurrency ?? workerConcurrencyOf(options.env),
  });
  poller.start();
  return {
    peers,
    offline,
    poller,
    // The poller first, so no batch is handed to a worker that is going away.
    async stop() {
      await poller.stop();
      await offline.stop();
      await peers.stop();
    },
  };
}
