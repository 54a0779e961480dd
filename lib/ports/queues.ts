import type { DeadLetter } from '../dead-letter.js';
import type { QueuedChange } from '../identity-change.js';

/**
 * The I/O the core depends on, as small interfaces. Production wires them to SQS, DynamoDB,
 * Secrets Manager and Klaviyo (lib/adapters, lib/klaviyo); tests hand in the same adapters
 * pointed at local peers, or fakes.
 */

export interface ChangeQueue {
  enqueue(change: QueuedChange): Promise<void>;
}

/** A letter on the dead-letter queue: its one definition, with the schema, is lib/dead-letter.ts. */
export type { DeadLetter };

/**
 * The queued message a move takes off its queue (SQS's message id and SentTimestamp): a move's
 * deduplication id is made of it and the kind of move, so a retried move is dropped as the same
 * one and a later move of the same change (replayed, then parked again) is not.
 */
export interface MovedMessage {
  messageId: string;
  /** When it was queued (epoch ms), if known. */
  sentAt?: number | undefined;
}

export interface DeadLetters {
  /**
   * `from`: the queued message the worker is parking. Without it (intake), the letter is
   * deduplicated by its delivery, like the delivery's change on the changes queue.
   */
  park(letter: DeadLetter, from?: MovedMessage): Promise<void>;
}

/** A queued message the worker could not finish yet, and how long the queue should keep it hidden. */
export interface Redelivery {
  /** The handle the queue gave this delivery of the message. */
  receiptHandle: string;
  delaySeconds: number;
}

/** The changes queue as its consumer sees it: when a change it hands back is delivered again. */
export interface Redeliveries {
  retryAfter(redeliveries: readonly Redelivery[]): Promise<void>;
}

/**
 * Signed bodies seen lately (lib/intake/receive.ts). A signature covers a body, not the delivery
 * id beside it: the same body again under another delivery id is a replay; under the same id, the
 * sender's retry. Each is remembered for `windowSeconds` from its first delivery.
 */
export interface SeenBodies {
  /**
   * Records that delivery `deliveryId` brought the body named `key` (source and digest) at `now`;
   * false when another delivery brought it within the window. True again for the same delivery.
   */
  claim(key: string, deliveryId: string, now: Date): Promise<boolean>;
}
