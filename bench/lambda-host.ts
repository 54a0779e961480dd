import { pathToFileURL } from 'node:url';
import { lambdaContext } from '../local/lambda-events.js';

/**
 * A Lambda runtime in miniature, for the benchmarks: in a fresh Node process, imports one bundled
 * handler (argv[2]) and runs the invocations its parent sends over IPC, one at a time as Lambda
 * does. Its stdout is the function's log. Started by bench/lambda-process.ts, bundled first so the
 * process holds nothing but the handler's bundle and this file.
 */
export type HostRequest = { type: 'invoke'; event: unknown } | { type: 'usage' } | { type: 'exit' };
export type HostReply =
  /** `importEndedUs`: the monotonic clock (µs) when the import ended, as CPU profiles time samples. */
  | { type: 'ready'; importMs: number; importEndedUs: number }
  | { type: 'invoked'; result: unknown; ms: number }
  | { type: 'failed'; error: string; ms: number }
  | { type: 'usage'; maxRssBytes: number; rssBytes: number; heapUsedBytes: number };

type Handler = (event: unknown, context: unknown) => Promise<unknown>;

const send = (reply: HostReply) => process.send?.(reply);
const [bundle = '', functionName = 'function'] = process.argv.slice(2);

const importStarted = performance.now();
const { handler } = (await import(pathToFileURL(bundle).href)) as { handler: Handler };
send({
  type: 'ready',
  importMs: performance.now() - importStarted,
  importEndedUs: Number(process.hrtime.bigint() / 1000n),
});

process.on('message', async (request: HostRequest) => {
  // A normal exit, so that --cpu-prof writes its profile.
  if (request.type === 'exit') process.exit(0);
  if (request.type === 'usage') {
    const { rss, heapUsed } = process.memoryUsage();
    // maxRSS is in KiB: the peak resident memory, what Lambda reports as "Max Memory Used".
    send({
      type: 'usage',
      maxRssBytes: process.resourceUsage().maxRSS * 1024,
      rssBytes: rss,
      heapUsedBytes: heapUsed,
    });
    return;
  }
  const started = performance.now();
  try {
    const result = await handler(request.event, lambdaContext(functionName));
    send({ type: 'invoked', result, ms: performance.now() - started });
  } catch (error) {
    send({ type: 'failed', error: String((error as Error).stack ?? error), ms: performance.now() - started });
  }
});
