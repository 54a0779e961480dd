import * as z from 'zod';
import {
  type CustomerMerge,
  customerMergeSchema,
  type IdentityChange,
  identityChangeSchema,
  messageGroupOf,
} from './identity-change.js';
import { describeIssues } from './validation.js';

/**
 * Something kept on the dead-letter queue for a person to look at and replay: it could not be
 * applied as it was. Intake, the worker, the replay path and the `dead-letters` report all read
 * this one shape.
 */
export const deadLetterSchema = z.object({
  /** Machine-readable, e.g. `invalid_payload`, `klaviyo_duplicate_profile`. */
  reason: z.string().min(1),
  detail: z.string(),
  tenant: z.string().optional(),
  source: z.enum([...identityChangeSchema.shape.source.options, 'unknown']),
  sourceEventId: z.string(),
  /** The customer the letter is about, when known: the change's, or a rejected ERP item's. */
  externalId: z.string().optional(),
  /** The queued change, when the failure came after intake: a redrive replays it. */
  change: identityChangeSchema.optional(),
  /** The queued customer merge, when it was one that failed: a redrive replays it. */
  merge: customerMergeSchema.optional(),
  /** The raw request body, when the payload itself was unusable. */
  payload: z.string().optional(),
  /** Extra facts for the reader, e.g. Klaviyo's error code and duplicate_profile_id. */
  context: z.record(z.string(), z.unknown()).optional(),
  parkedAt: z.iso.datetime({ offset: true }),
});

export type DeadLetter = z.infer<typeof deadLetterSchema>;

/** A letter as it goes on the queue; one that does not fit the schema is a bug, so it throws. */
export function serializeDeadLetter(letter: DeadLetter): string {
  const parsed = deadLetterSchema.safeParse({
    ...letter,
    externalId: letter.externalId ?? letter.change?.externalId ?? letter.merge?.deletedExternalId,
  });
  if (!parsed.success)
    throw new Error(`dead letter does not fit its schema: ${describeIssues(parsed.error, '(letter)')}`);
  return JSON.stringify(parsed.data);
}

/**
 * A letter's FIFO group: a parked change (or merge) stays in its customer's group, so a redrive
 * replays that customer in order; an unusable payload has no order to keep, and a group of its
 * own blocks nothing.
 */
export function messageGroupOfLetter(letter: DeadLetter): string {
  const queued = letter.change ?? letter.merge;
  return queued ? messageGroupOf(queued) : `intake:${letter.tenant ?? 'unknown'}:${letter.sourceEventId}`;
}

/** What a message of the changes queue or the dead-letter queue is. */
export type QueuedMessage =
  | { kind: 'change'; change: IdentityChange }
  | { kind: 'merge'; merge: CustomerMerge }
  /** A parked letter: replayable when it carries its `change`, an unusable payload when not. */
  | { kind: 'letter'; letter: DeadLetter }
  | { kind: 'unreadable'; problem: string };

/**
 * Reads a message body: a queued change or customer merge, a parked letter (SQS redrive moves
 * those back to the changes queue), or none of them, with the problem in words.
 */
export function readQueuedMessage(body: string): QueuedMessage {
  const unreadable = (problem: string) => ({ kind: 'unreadable', problem }) as const;
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return unreadable('the body is not JSON');
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    return unreadable('the body is JSON, but not an object');
  if ('reason' in json) {
    const letter = deadLetterSchema.safeParse(json);
    if (letter.success) return { kind: 'letter', letter: letter.data };
    return unreadable(
      `a parked letter that does not fit its shape: ${describeIssues(letter.error, '(letter)')}`,
    );
  }
  if ('kind' in json && json.kind === 'customerMerge') {
    const merge = customerMergeSchema.safeParse(json);
    if (merge.success) return { kind: 'merge', merge: merge.data };
    return unreadable(
      `a customer merge that does not fit its shape: ${describeIssues(merge.error, '(merge)')}`,
    );
  }
  const change = identityChangeSchema.safeParse(json);
  if (change.success) return { kind: 'change', change: change.data };
  return unreadable(
    `neither a parked letter (no reason) nor an identity change: ${describeIssues(change.error, '(change)')}`,
  );
}
