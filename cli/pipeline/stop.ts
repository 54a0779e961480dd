import { KlaviyoUnreachableError } from '../../lib/klaviyo/errors.js';
import { type CliIo, stopController } from '../io.js';
import { isKeyRefused } from '../klaviyo-key.js';

/** Why a run stopped before its last row: rows not attempted then are reported (but for Ctrl-C). */
export type StopReason = { kind: 'key' | 'unreachable' | 'interrupted'; message: string };

/** A run's brake: Ctrl-C, or an error after which no row can succeed. */
export interface RunStop {
  readonly signal: AbortSignal;
  /** Stops the run when `error` says every later row would fail too: a refused key, Klaviyo unreachable. */
  onError(error: unknown): void;
  reason(): StopReason | undefined;
}

export function createRunStop(io: CliIo): RunStop {
  const stop = stopController(io, {
    kind: 'interrupted',
    message: 'interrupted (Ctrl-C)',
  } satisfies StopReason);
  return {
    signal: stop.signal,
    onError(error) {
      if (isKeyRefused(error)) stop.abort({ kind: 'key', message: (error as Error).message });
      else if (error instanceof KlaviyoUnreachableError)
        stop.abort({ kind: 'unreachable', message: error.message });
    },
    reason: () => stop.signal.reason as StopReason | undefined,
  };
}
