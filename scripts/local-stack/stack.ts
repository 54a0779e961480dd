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
