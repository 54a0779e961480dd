import type { SQSClient } from '@aws-sdk/client-sqs';
import { type DeadLetter, letterOfQueued } from '../dead-letter.js';
import { TransientError } from '../errors.js';
import type { ParkedLetters } from '../ports.js';
import { dropMessages, type PeekedMessage, peekQueue } from './sqs-peek.js';

/** How many letters a read for an export looks at. */
const READ_LIMIT = 1_000;

/**
 * The letter a dead-letter queue message is: a parked letter, or a queued message SQS's redrive
 * moved there as it was (read as the retries_exhausted letter it stands for); none when unreadable.
 */
function letterIn(message: PeekedMessage): DeadLetter | undefined {
  const { content } = message;
  if (content.kind === 'letter') return content.letter;
  if (content.kind !== 'queued') return undefined;
  return letterOfQueued(content.queued, {
    reason: 'retries_exhausted',
    detail: 'moved to the dead-letter queue by SQS as it was queued',
    attempts: message.receiveCount ?? 0,
    parkedAt: message.sentAt ?? new Date(0).toISOString(),
  });
}

/**
 * The dead-letter queue for erasure and export. A drop that could not read the queue to its end
 * for a failure (not for its limit) throws a transient error, so the erasure is tried again.
 */
export function createSqsParkedLetters(sqs: SQSClient, deadLetterQueueUrl: string): ParkedLetters {
  const picked = (picks: (letter: DeadLetter) => boolean) => (message: PeekedMessage) => {
    const letter = letterIn(message);
    return letter !== undefined && picks(letter);
  };
  return {
    async read(picks) {
      const peek = await peekQueue(sqs, deadLetterQueueUrl, READ_LIMIT);
      const letters = peek.messages.filter(picked(picks)).flatMap((message) => letterIn(message) ?? []);
      return { letters, ...(peek.problem && { problem: peek.problem }) };
    },
    async drop(picks) {
      const report = await dropMessages(sqs, deadLetterQueueUrl, picked(picks));
      if (report.problem && !report.complete) {
        throw new TransientError('queue_unavailable', `parked letters not all read: ${report.problem}`);
      }
      return {
        dropped: report.dropped.length,
        complete: report.complete,
        ...(report.problem && { problem: report.problem }),
      };
    },
  };
}
