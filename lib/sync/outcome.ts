import { IdentitySyncError, isTransient, OUT_OF_TIME, PermanentError, TransientError } from '../errors.js';
import { KlaviyoApiError } from '../klaviyo/errors.js';
import { Reason } from '../reasons.js';

/**
 * What handling a queued change came to, as a value: done (applied, skipped: the result says),
 * to be tried again later, or to be parked, each with why. The plan's own "retry" and "park" come
 * back as such from execute.ts; a failure on the way (Klaviyo, AWS, a bug) becomes one through
 * outcomeOfError. queueActionOf then says what the queue does with it, for the worker and the CLI.
 */
export interface NotDone {
  /** Machine-readable (a Reason, Klaviyo's code, `unexpected_error`): a parked letter's reason. */
  reason: string;
  /** In words, for a person. */
  detail: string;
  /** Facts for the reader: the profiles involved, Klaviyo's status, code and pointer. */
  context?: Record<string, unknown> | undefined;
  /** The plan decided it (a conflict waited out, a duplicate parked by policy): nothing failed. */
  planned?: boolean;
  /** The error it came from, when it came from one. */
  error?: unknown;
}

export type RetryLater = NotDone & { status: 'retry-later' };
export type Park = NotDone & { status: 'park' };

export type ChangeOutcome<Done> = { status: 'done'; result: Done } | RetryLater | Park;

/** The queue's side: take the message off the queue, park it there (then take it off), or hand it back. */
export type QueueAction =
  | { action: 'acknowledge' }
  | { action: 'park'; park: Park }
  | { action: 'hand-back'; retry: RetryLater; outOfTime: boolean };

export const done = <Done>(result: Done): ChangeOutcome<Done> => ({ status: 'done', result });

/**
 * What the queue does with an outcome: a done change is acknowledged, a parked one goes to the
 * dead-letter queue, and one to try again goes back, at once when it was only out of time (the
 * worker's handBack says how long it waits otherwise; lib/sync/redelivery.ts).
 */
export function queueActionOf(outcome: ChangeOutcome<unknown>): QueueAction {
  switch (outcome.status) {
    case 'done':
      return { action: 'acknowledge' };
    case 'park':
      return { action: 'park', park: outcome };
    case 'retry-later':
      return backToQueue(outcome);
  }
}

/** Back to the queue: at once when it was only out of time (nothing failed), else after a wait. */
export const backToQueue = (retry: RetryLater): Extract<QueueAction, { action: 'hand-back' }> => ({
  action: 'hand-back',
  retry,
  outOfTime: retry.reason === OUT_OF_TIME,
});

/**
 * A failure on the way, as an outcome. Transient errors, and errors of no kind we know (a bug, an
 * SDK's), are tried again: the queue's schedule parks them if they persist. A permanent error
 * parks the change at once, with Klaviyo's facts when it is Klaviyo's.
 */
export function outcomeOfError(error: unknown): RetryLater | Park {
  const detail = error instanceof Error ? error.message : String(error);
  if (isTransient(error) || !(error instanceof IdentitySyncError)) {
    const reason = error instanceof IdentitySyncError ? error.reason : 'unexpected_error';
    return { status: 'retry-later', reason, detail, error };
  }
  return { status: 'park', reason: error.reason, detail, context: klaviyoFactsOf(error), error };
}

function klaviyoFactsOf(error: IdentitySyncError): Record<string, unknown> | undefined {
  if (error instanceof ChangeParkedError) return error.context;
  if (!(error instanceof KlaviyoApiError)) return undefined;
  return {
    status: error.status,
    code: error.code,
    pointer: error.pointer,
    duplicateProfileId: error.duplicateProfileId,
  };
}

/** A change the plan parks, as an error: for callers that still take outcomes as errors (resultOrThrow). */
export class ChangeParkedError extends PermanentError {
  constructor(
    reason: string,
    message: string,
    readonly context: Record<string, unknown>,
  ) {
    super(reason, message);
  }
}

/** Another customer holds an identifier this change needs, as an error (resultOrThrow): their own change may free it. */
export class IdentifierHeldError extends TransientError {
  constructor(
    message: string,
    readonly context: Record<string, unknown>,
  ) {
    super(Reason.IdentifierHeldByOtherCustomer, message);
  }
}

/**
 * The result of a done change; a change not done as the error it came from, or, decided by the
 * plan, as IdentifierHeldError or ChangeParkedError. For callers that take outcomes as errors (the
 * CLI's rows, until they call queueActionOf).
 */
export function resultOrThrow<Done>(outcome: ChangeOutcome<Done>): Done {
  if (outcome.status === 'done') return outcome.result;
  throw errorOf(outcome);
}

/** A change not done, as an error: the failure it met, or the plan's decision as an error of its own. */
export function errorOf(outcome: RetryLater | Park): unknown {
  if (!outcome.planned) return outcome.error;
  const context = outcome.context ?? {};
  if (outcome.status === 'retry-later') return new IdentifierHeldError(outcome.detail, context);
  return new ChangeParkedError(outcome.reason, outcome.detail, context);
}
