import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { build } from 'esbuild';
import { SERVICE_DIR } from '../scripts/local-stack/offline.js';
import { runAtCpuShare } from './cpu-share.js';
import type { HostReply, HostRequest } from './lambda-host.js';

/**
 * A bundled function in a process of its own, as Lambda runs it: bench/lambda-host.ts imports the
 * bundle, then runs what `invoke` sends. For cold loads (fresh process each), peak memory and log
 * volume (its stdout) over a run.
 */
export interface LambdaProcess {
  /** How long importing the bundle took, in the child. */
  importMs: number;
  /** When the import ended on the child's monotonic clock (µs), to split a CPU profile. */
  importEndedUs: number;
  invoke(event: unknown): Promise<{ result: unknown; ms: number }>;
  usage(): Promise<{ maxRssBytes: number; rssBytes: number; heapUsedBytes: number }>;
  /** Bytes the function has written to stdout (its log, EMF metrics included) so far. */
  logBytes(): number;
  /** The first bytes of its stdout (up to 8 KiB): what its log lines look like. */
  logStart(): string;
  stop(): Promise<void>;
}

/** Bundles bench/lambda-host.ts into `dir`; returns the file to hand to startLambdaProcess. */
export async function buildLambdaHost(dir: string): Promise<string> {
  const outfile = join(dir, 'lambda-host.mjs');
  await build({
    absWorkingDir: SERVICE_DIR,
    entryPoints: ['bench/lambda-host.ts'],
    outfile,
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node24',
    logLevel: 'error',
  });
  return outfile;
}

export interface LambdaProcessOptions {
  host: string;
  bundle: string;
  functionName: string;
  env: Record<string, string | undefined>;
  /** Node flags, e.g. `--enable-source-maps` (what NODE_OPTIONS would set in Lambda). */
  execArgv?: string[];
  /** Run at the share of a CPU Lambda gives this memory size (bench/cpu-share.ts), not a full core. */
  cpuShareOfMemory?: number;
}

export async function startLambdaProcess(options: LambdaProcessOptions): Promise<LambdaProcess> {
  const child = fork(options.host, [options.bundle, options.functionName], {
    env: { ...options.env, AWS_LAMBDA_FUNCTION_NAME: options.functionName },
    execArgv: options.execArgv ?? [],
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  const release =
    options.cpuShareOfMemory !== undefined && child.pid !== undefined
      ? await runAtCpuShare(child.pid, options.cpuShareOfMemory)
      : undefined;
  let logBytes = 0;
  const LOG_START_BYTES = 8192;
  const start: Buffer[] = [];
  child.stdout?.on('data', (chunk: Buffer) => {
    if (logBytes < LOG_START_BYTES) start.push(chunk.subarray(0, LOG_START_BYTES - logBytes));
    logBytes += chunk.length;
  });
  const ready = await nextReply(child);
  if (ready.type !== 'ready') throw new Error(`${options.functionName}: unexpected ${ready.type}`);

  const ask = async (request: HostRequest) => {
    const reply = nextReply(child);
    child.send(request);
    return reply;
  };
  return {
    importMs: ready.importMs,
    importEndedUs: ready.importEndedUs,
    async invoke(event) {
      const reply = await ask({ type: 'invoke', event });
      if (reply.type === 'failed') throw new Error(`${options.functionName} failed: ${reply.error}`);
      if (reply.type !== 'invoked') throw new Error(`${options.functionName}: unexpected ${reply.type}`);
      return { result: reply.result, ms: reply.ms };
    },
    async usage() {
      const reply = await ask({ type: 'usage' });
      if (reply.type !== 'usage') throw new Error(`${options.functionName}: unexpected ${reply.type}`);
      return reply;
    },
    logBytes: () => logBytes,
    logStart: () => Buffer.concat(start).toString('utf8'),
    async stop() {
      // The log counted to its last byte: stdout closes after the process exits.
      const closed = child.stdout ? once(child.stdout, 'close') : Promise.resolve();
      child.send({ type: 'exit' } satisfies HostRequest);
      await closed;
      await release?.();
    },
  };
}

function nextReply(child: ChildProcess): Promise<HostReply> {
  return new Promise((resolve, reject) => {
    const onExit = (code: number | null) => reject(new Error(`the function's process exited (${code})`));
    child.once('exit', onExit);
    child.once('message', (reply: HostReply) => {
      child.off('exit', onExit);
      resolve(reply);
    });
  });
}
