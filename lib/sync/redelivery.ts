import type { RetrySchedule } from '../config.js';

/**
 * What becomes of a change that failed for now (Klaviyo or AWS slow, throttling or down, or no
 * time left in the invocation). Waiting is not failing: it goes back to the queue, hidden a little
 * longer each time, and is parked only once it has kept failing longer than the schedule allows.
 * Pure, so the schedule is tested without a queue or a clock.
 */
export type Redelivery = { park: false; delaySeconds: number } | { park: true };

export interface FailedDelivery {
  /** How many times the queue has delivered the change (1 at first). */
  attempt: number;
  /** How long ago the change was queued, in milliseconds. */
  ageMs: number;
  /** The invocation ran out of time before the change was tried: nothing failed. */
  outOfTime: boolean;
}

export function redeliveryOf(failed: FailedDelivery, schedule: RetrySchedule): Redelivery {
  // Not tried at all: the next invocation may take it at once.
  if (failed.outOfTime) return { park: false, delaySeconds: 0 };
  if (failed.ageMs > schedule.maxChangeAgeMs) return { park: true };
  const doublings = Math.min(Math.max(failed.attempt - 1, 0), 30);
  return {
    park: false,
    delaySeconds: Math.min(schedule.maxDelaySeconds, schedule.firstDelaySeconds * 2 ** doublings),
  };
}
