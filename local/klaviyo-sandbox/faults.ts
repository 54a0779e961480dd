import { isPlainObject } from './attributes.js';
import { ApiError, throttled } from './errors.js';
import { type ErrorFault, FAULT_STATUSES, type SandboxFault } from './types.js';

interface QueuedFault {
  fault: SandboxFault;
  remaining: number;
}

/** Faults waiting for matching requests; each match uses up one of the fault's `times`. */
export class FaultQueue {
  #queue: QueuedFault[] = [];

  /** Validates every fault before queuing any, so a bad batch changes nothing. */
  add(inputs: unknown[]): void {
    const faults = inputs.map(validateFault);
    for (const fault of faults) this.#queue.push({ fault, remaining: fault.times ?? 1 });
  }

  /** Consumes one use of the oldest queued fault that matches the request, if any. */
  take(method: string, path: string): SandboxFault | undefined {
    const queued = this.#queue.find(({ fault }) => matches(fault, method, path));
    if (!queued) return undefined;
    queued.remaining--;
    this.#queue = this.#queue.filter((entry) => entry.remaining > 0);
    return queued.fault;
  }

  clear(): void {
    this.#queue = [];
  }
}

function matches(fault: SandboxFault, method: string, path: string): boolean {
  if (fault.method !== undefined && fault.method.toUpperCase() !== method) return false;
  return fault.pathPrefix === undefined || path.startsWith(fault.pathPrefix);
}

const SERVER_ERRORS: Record<Exclude<ErrorFault['status'], 429>, { code: string; title: string }> = {
  500: { code: 'error', title: 'A server error occurred.' },
  502: { code: 'bad_gateway', title: 'Bad gateway.' },
  503: { code: 'service_unavailable', title: 'Service temporarily unavailable.' },
  504: { code: 'gateway_timeout', title: 'Gateway timeout.' },
};

/** The error an injected fault answers with. */
export function faultError(fault: ErrorFault): ApiError {
  if (fault.status === 429) return throttled(fault.retryAfterSeconds);
  const { code, title } = SERVER_ERRORS[fault.status];
  const headers: Record<string, string> =
    fault.retryAfterSeconds === undefined ? {} : { 'retry-after': String(fault.retryAfterSeconds) };
  return new ApiError(fault.status, code, title, 'Injected fault (Klaviyo sandbox).', { headers });
}

const invalidFault = (detail: string) => new ApiError(400, 'invalid', 'Invalid fault.', detail);

const isCount = (value: unknown, min: number) => Number.isInteger(value) && (value as number) >= min;

/** Checks a fault from untyped input (the HTTP control route) as strictly as the type does. */
function validateFault(input: unknown): SandboxFault {
  if (!isPlainObject(input)) throw invalidFault('A fault must be an object.');
  const { status, times, retryAfterSeconds, delayMs, method, pathPrefix } = input;
  if (status !== undefined && !(FAULT_STATUSES as readonly unknown[]).includes(status)) {
    throw invalidFault(`status must be one of ${FAULT_STATUSES.join(', ')}.`);
  }
  if (status === undefined && delayMs === undefined)
    throw invalidFault('A fault needs a status, a delayMs or both.');
  if (times !== undefined && !isCount(times, 1)) throw invalidFault('times must be an integer ≥ 1.');
  if (delayMs !== undefined && !isCount(delayMs, 0)) throw invalidFault('delayMs must be an integer ≥ 0.');
  if (retryAfterSeconds !== undefined && !isCount(retryAfterSeconds, 0)) {
    throw invalidFault('retryAfterSeconds must be an integer ≥ 0.');
  }
  if (method !== undefined && typeof method !== 'string') throw invalidFault('method must be a string.');
  if (pathPrefix !== undefined && (typeof pathPrefix !== 'string' || !pathPrefix.startsWith('/'))) {
    throw invalidFault("pathPrefix must be a string starting with '/'.");
  }
  return { ...input } as unknown as SandboxFault;
}
