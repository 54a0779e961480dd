/**
 * Every error the core raises says whether trying again can help. The worker retries transient
 * errors through SQS and parks permanent ones on the dead-letter queue with their reason.
 */
export abstract class IdentitySyncError extends Error {
  abstract readonly transient: boolean;
  /** Machine-readable reason, recorded with a parked change. */
  abstract readonly reason: string;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Retrying later may succeed: Klaviyo outage, rate limit, timeout, AWS hiccup. */
export class TransientError extends IdentitySyncError {
  readonly transient = true;
  constructor(
    readonly reason: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** What a change that was not tried (or not finished) for lack of time in this invocation fails with. */
export const OUT_OF_TIME = 'out_of_time';

/** No time left in this invocation (e.g. no Klaviyo quota before its deadline): back to the queue at once. */
export class OutOfTimeError extends TransientError {
  constructor(message: string) {
    super(OUT_OF_TIME, message);
  }
}

/** Retrying the same input cannot succeed: invalid data, rejected key, unknown tenant. */
export class PermanentError extends IdentitySyncError {
  readonly transient = false;
  constructor(
    readonly reason: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A setting is missing or malformed; raised at load so a bad deploy fails at once. */
export class ConfigurationError extends PermanentError {
  constructor(message: string) {
    super('configuration', message);
  }
}

export const isTransient = (error: unknown): boolean => error instanceof IdentitySyncError && error.transient;
