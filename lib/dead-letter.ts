import * as z from 'zod';
import {
  customerDataRequestSchema,
  customerMergeSchema,
  customerOf,
  customerRedactSchema,
  identityChangeSchema,
  kindOf,
  messageGroupOf,
  parseQueuedChange,
  type QueuedChange,
  type QueuedKind,
  shopRedactSchema,
} from './identity-change.js';
import { contentIdOf, letterWithPayload } from './intake/letters.js';
import { Reason } from './reasons.js';
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
  /** The queued compliance request (erasure of a customer, export, erasure of a shop), when one failed. */
  redact: customerRedactSchema.optional(),
  dataRequest: customerDataRequestSchema.optional(),
  shopRedact: shopRedactSchema.optional(),
  /** The raw request body, when the payload itself was unusable. */
  payload: z.string().optional(),
  /** Extra facts for the reader, e.g. Klaviyo's error code and duplicate_profile_id. */
  context: z.record(z.string(), z.unknown()).optional(),
  parkedAt: z.iso.datetime({ offset: true }),
});

export type DeadLetter = z.infer<typeof deadLetterSchema>;

/** A letter as it goes on the queue; one that does not fit the schema is a bug, so it throws. */
export function serializeDeadLetter(letter: DeadLetter): string {
  const queued = queuedChangeOfLetter(letter);
  const parsed = deadLetterSchema.safeParse({
    ...letter,
    externalId: letter.externalId ?? (queued && customerOf(queued)),
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
  const queued = queuedChangeOfLetter(letter);
  return queued ? messageGroupOf(queued) : `intake:${letter.tenant ?? 'unknown'}:${letter.sourceEventId}`;
}

/**
 * The field of a letter that keeps each kind of queued message, so that a replay applies it as it
 * was. Old letters stay readable: the fields are the ones letters always had.
 */
const LETTER_FIELD = {
  identityChange: 'change',
  customerMerge: 'merge',
  customerRedact: 'redact',
  customerDataRequest: 'dataRequest',
  shopRedact: 'shopRedact',
} as const satisfies Record<QueuedKind, keyof DeadLetter>;

/** The queued message a letter keeps for replay, if any (an unusable payload keeps none). */
export function queuedChangeOfLetter(letter: DeadLetter): QueuedChange | undefined {
  for (const field of Object.values(LETTER_FIELD)) {
    const queued = letter[field];
    if (queued) return queued;
  }
  return undefined;
}

/** Why a queued message is parked, and how it got there. */
export interface ParkedFailure {
  reason: string;
  /** The last error, in words. */
  detail: string;
  /** Extra facts, e.g. Klaviyo's code, the last transient error's reason. */
  context?: Record<string, unknown> | undefined;
  /** How many times the queue delivered it (SQS's ApproximateReceiveCount), this delivery included. */
  attempts: number;
  parkedAt: string;
}

/**
 * The one letter the worker parks a queued message with, whatever its kind and whatever the
 * failure: its reason, the last error, the number of deliveries, and the message itself in its
 * kind's field for a replay.
 */
export function letterOfQueued(queued: QueuedChange, failure: ParkedFailure): DeadLetter {
  return {
    reason: failure.reason,
    detail: failure.detail,
    tenant: queued.tenant,
    source: queued.source,
    sourceEventId: queued.sourceEventId,
    externalId: customerOf(queued),
    [LETTER_FIELD[kindOf(queued)]]: queued,
    context: { ...failure.context, attempts: failure.attempts },
    parkedAt: failure.parkedAt,
  };
}

/** The letter of a queued body that is no message at all: kept whole, or cut when too large. */
export function letterOfUnreadable(body: string, failure: Omit<ParkedFailure, 'reason'>): DeadLetter {
  const letter = {
    reason: Reason.InvalidMessage,
    detail: failure.detail,
    tenant: undefined,
    source: 'unknown',
    sourceEventId: contentIdOf(body),
    context: { ...failure.context, attempts: failure.attempts },
    parkedAt: failure.parkedAt,
  } as const;
  return letterWithPayload(letter, body);
}

/**
 * What a message of the changes queue or the dead-letter queue is: a queued message of one of the
 * QUEUED_KINDS, a parked letter, or neither.
 */
export type QueuedMessage =
  | { kind: 'queued'; queued: QueuedChange }
  /** A parked letter: replayable when it carries its queued message, an unusable payload when not. */
  | { kind: 'letter'; letter: DeadLetter }
  | { kind: 'unreadable'; problem: string };

/**
 * The queued message to act on: the message itself, or the one a parked letter keeps (replay and
 * SQS redrive move letters back to the changes queue); else why there is none.
 */
export function queuedChangeIn(message: QueuedMessage): { queued: QueuedChange } | { problem: string } {
  switch (message.kind) {
    case 'queued':
      return { queued: message.queued };
    case 'unreadable':
      return { problem: message.problem };
    case 'letter': {
      const queued = queuedChangeOfLetter(message.letter);
      return queued
        ? { queued }
        : { problem: `a parked ${message.letter.reason} letter with no change to replay` };
    }
  }
}

/**
 * Reads a message body once: a queued message by its `kind` tag (untagged: an identity change, as
 * queued before the tag), a parked letter, or none of them, with the problem in words.
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
  const read = parseQueuedChange(json as Record<string, unknown>);
  if ('queued' in read) return { kind: 'queued', queued: read.queued };
  if (!read.issues) return unreadable(read.problem);
  const issues = describeIssues(read.issues, '(message)');
  return unreadable(
    'kind' in json
      ? `${read.problem}: ${issues}`
      : `neither a parked letter (no reason) nor an identity change: ${issues}`,
  );
}
