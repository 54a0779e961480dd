import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';

/**
 * serverless-offline as a child process (`osls offline start --stage local`): the two functions
 * behind the HTTP API route and the Lambda Invoke API on loopback, bundled by serverless-esbuild
 * and rebuilt on change. It ignores the worker's sqs event, so the queue poller invokes the worker.
 */
export interface OfflineOptions {
  /** The peers' env: serverless.yml reads the resource settings of stage `local` from it. */
  env: Record<string, string>;
  /**
   * The environment osls starts in, under `env`: each setting serverless.yml reads with
   * `${env:…}` and the peers do not set comes from here. Default: this process's, the shell's.
   */
  baseEnv?: NodeJS.ProcessEnv;
  httpPort: number;
  lambdaPort: number;
  /** serverless-esbuild's work folder, relative to the repo; keeps parallel runs apart. */
  esbuildWorkFolder?: string;
  /** Each line serverless-offline prints (stdout and stderr). */
  onOutput?: (line: string) => void;
  startupTimeoutMs?: number;
}

export interface Offline {
  webhookUrl: string;
  /** Base URL of the Lambda Invoke API. */
  lambdaUrl: string;
  /** serverless-offline's process group: it and whatever it started. */
  processGroup: number;
  /** Settles when serverless-offline ends, whether by stop() or not. */
  exited: Promise<void>;
  stop(): Promise<void>;
}

export const SERVICE_DIR = resolve(import.meta.dirname, '../..');
export const OSLS = resolve(SERVICE_DIR, 'node_modules/osls/bin/serverless.js');
export const LOCAL_STAGE = 'local';
const WORKER_FUNCTION_NAME = `klaviyo-identity-sync-${LOCAL_STAGE}-sync-worker`;

/**
 * What osls runs with: serverless.yml resolves the functions' environment from it, and
 * serverless-offline hands the functions that environment (and of its own only AWS_* variables).
 */
export function offlineEnvironment(options: OfflineOptions): NodeJS.ProcessEnv {
  return {
    ...(options.baseEnv ?? process.env),
    ...options.env,
    OFFLINE_HTTP_PORT: String(options.httpPort),
    OFFLINE_LAMBDA_PORT: String(options.lambdaPort),
    ...(options.esbuildWorkFolder && { SLS_ESBUILD_WORK_FOLDER: options.esbuildWorkFolder }),
  };
}

export async function startOffline(options: OfflineOptions): Promise<Offline> {
  await assertFree(options.httpPort);
  await assertFree(options.lambdaPort);
  const child = spawn(process.execPath, [OSLS, 'offline', 'start', '--stage', LOCAL_STAGE], {
    cwd: SERVICE_DIR,
    env: offlineEnvironment(options),
    // Its own process group, so stop() also ends what it spawns (esbuild's service process).
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  forwardLines(child, options.onOutput ?? (() => undefined));
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', () => resolve());
  });
  if (child.pid === undefined) throw new Error('could not start serverless-offline');
  const group = child.pid;
  // Should this process end without stop() (a crash, process.exit), don't leave the child behind.
  const killOnExit = () => signalGroup(group, 'SIGKILL');
  process.once('exit', killOnExit);

  // Done when the whole group is gone, not just osls: esbuild's service process ends after it.
  const stop = async () => {
    process.off('exit', killOnExit);
    signalGroup(group, 'SIGTERM');
    if (await groupEnded(group, 5_000)) return;
    signalGroup(group, 'SIGKILL');
    await groupEnded(group, 2_000);
  };

  const webhookUrl = `http://127.0.0.1:${options.httpPort}/webhooks/shopify`;
  try {
    await waitUntilAnswering(
      `http://127.0.0.1:${options.httpPort}/`,
      exited,
      options.startupTimeoutMs ?? 60_000,
    );
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    webhookUrl,
    lambdaUrl: `http://127.0.0.1:${options.lambdaPort}`,
    processGroup: group,
    exited,
    stop,
  };
}

/**
 * Invokes a function through serverless-offline's Lambda Invoke API, as the SQS event source
 * does in AWS. A handler that threw comes back as HTTP 200 with `X-Amz-Function-Error`, like AWS;
 * we throw then, so the poller fails the whole batch.
 */
/** The function Shopify's EventBridge events are given to (serverless.yml: shopify-eventbridge). */
export const EVENTBRIDGE_FUNCTION_NAME = `klaviyo-identity-sync-${LOCAL_STAGE}-shopify-eventbridge`;

/** Where a function is invoked through serverless-offline's Lambda endpoint. */
export const invocationUrl = (lambdaUrl: string, functionName: string) =>
  `${lambdaUrl}/2015-03-31/functions/${encodeURIComponent(functionName)}/invocations`;

export function lambdaInvoker(lambdaUrl: string, functionName = WORKER_FUNCTION_NAME) {
  const url = invocationUrl(lambdaUrl, functionName);
  return async (event: SQSEvent): Promise<SQSBatchResponse | undefined> => {
    const response = await fetch(url, { method: 'POST', body: JSON.stringify(event) });
    const text = await response.text();
    if (!response.ok || response.headers.has('x-amz-function-error')) {
      throw new Error(`${functionName} failed (HTTP ${response.status}): ${text}`);
    }
    return text ? (JSON.parse(text) as SQSBatchResponse) : undefined;
  };
}

/** Checked first: whatever else listens there would answer the readiness check in its stead. */
async function assertFree(port: number): Promise<void> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', () => reject(new Error(`port ${port} on 127.0.0.1 is in use`)));
    server.listen(port, '127.0.0.1', resolve);
  });
  await new Promise((resolve) => server.close(resolve));
}

/** Any HTTP answer (a 404 included) means the server is up; a child that exits first is a failure. */
async function waitUntilAnswering(url: string, exited: Promise<void>, timeoutMs: number): Promise<void> {
  let childExited = false;
  void exited.then(() => {
    childExited = true;
  });
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (childExited) throw new Error('serverless-offline exited during startup (see its output)');
    try {
      await fetch(url, { signal: AbortSignal.timeout(1_000) });
      return;
    } catch {
      await sleep(250);
    }
  }
  throw new Error(`serverless-offline did not answer on ${url} within ${timeoutMs} ms`);
}

function forwardLines(child: ChildProcess, onLine: (line: string) => void): void {
  for (const stream of [child.stdout, child.stderr]) {
    if (stream) createInterface({ input: stream }).on('line', onLine);
  }
}

/** Sends `signal` to the process group; false when none of it is left (signal 0 only checks). */
function signalGroup(group: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-group, signal);
    return true;
  } catch {
    return false;
  }
}

async function groupEnded(group: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (signalGroup(group, 0)) {
    if (Date.now() >= deadline) return false;
    await sleep(50);
  }
  return true;
}
