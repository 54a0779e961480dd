import { isPlainObject } from './attributes.js';
import { ApiError, throttled } from './errors.js';
import { type ErrorFault, FAULT_STATUSES, type SandboxFault } from './types.js';

interface QueuedFault {
  fault: SandboxFault;
  remaining: number;
  /** `clock()` after which the fault no longer applies (`forMs`). */
  until: number;
}

/**
 * Faults waiting for matching requests; each match uses up one of the fault's `times`. A fault
 * with a `probability` or `forMs` applies until used up, expired or cleared.
 */
export class FaultQueue {
  #queue: QueuedFault[] = [];

  constructor(
    private readonly clock: () => number = Date.now,
    private readonly random: () => number = Math.random,
  ) {}

  /** Validates every fault before queuing any, so a bad batch changes nothing. */
  add(inputs: unknown[]): void {
    const faults = inputs.map(validateFault);
    for (const fault of faults) {
      const open = fault.probability !== undefined || fault.forMs !== undefined;
      this.#queue.push({
        fault,
        remaining: fault.times ?? (open ? Number.POSITIVE_INFINITY : 1),
        until: fault.forMs === undefined ? Number.POSITIVE_INFINITY : this.clock() + fault.forMs,
      });
    }
  }

  /** Consumes one use of the oldest queued fault that matches the request, if any (and if its chance says so). */
  take(method: string, path: string): SandboxFault | undefined {
    const now = this.clock();
    this.#queue = this.#queue.filter((entry) => entry.until > now);
    const queued = this.#queue.find(({ fault }) => matches(fault, method, path));
    if (!queued) return undefined;
    if (queued.fault.probability !== undefined && this.random() >= queued.fault.probability) return undefined;
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

const ERRORS: Record<Exclude<ErrorFault['status'], 429>, { code: string; title: string }> = {
  400: { code: 'invalid', title: 'Invalid input.' },
  500: { code: 'error', title: 'A server error occurred.' },
  502: { code: 'bad_gateway', title: 'Bad gateway.' },
  503: { code: 'service_unavailable', title: 'Service temporarily unavailable.' },
  504: { code: 'gateway_timeout', title: 'Gateway timeout.' },
};

/** How a request log entry names the fault it met. */
export function faultName(fault: SandboxFault): string {
  const kind = fault.status !== undefined ? String(fault.status) : 'reset' in fault ? 'reset' : 'slow';
  return fault.afterApplying ? `${kind}+applied` : kind;
}

/** The error an injected fault answers with. */
export function faultError(fault: ErrorFault): ApiError {
  if (fault.status === 429) return throttled(fault.retryAfterSeconds);
  const { code, title } = ERRORS[fault.status];
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
  const { probability, forMs, reset, afterApplying } = input;
  if (status !== undefined && !(FAULT_STATUSES as readonly unknown[]).includes(status)) {
    throw invalidFault(`status must be one of ${FAULT_STATUSES.join(', ')}.`);
  }
  if (reset !== undefined && (reset !== true || status !== undefined)) {
    throw invalidFault('reset must be true, and a reset fault has no status.');
  }
  if (status === undefined && delayMs === undefined && reset === undefined)
    throw invalidFault('A fault needs a status, a delayMs, a reset or a status and a delayMs.');
  if (
    probability !== undefined &&
    !(typeof probability === 'number' && probability > 0 && probability <= 1)
  ) {
    throw invalidFault('probability must be a number above 0, at most 1.');
  }
  if (forMs !== undefined && !isCount(forMs, 1)) throw invalidFault('forMs must be an integer ≥ 1.');
  if (afterApplying !== undefined && typeof afterApplying !== 'boolean') {
    throw invalidFault('afterApplying must be a boolean.');
  }
  if (afterApplying && status !== undefined) {
    throw invalidFault('afterApplying is for delays and resets: an error answer applies nothing.');
  }
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
