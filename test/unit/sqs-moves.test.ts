import type { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { describe, expect, it } from 'vitest';
import {
  createSqsChangeQueue,
  createSqsDeadLetters,
  deduplicationIdOfMove,
} from '../../lib/adapters/sqs-queues.js';
import { letterOfQueued } from '../../lib/dead-letter.js';
import { aChange } from '../support/factories.js';

/**
 * The deduplication id of each send to a FIFO queue: SQS drops a message whose id it saw in the
 * last 5 minutes, so an id must name one move of one message, not the change it carries.
 */
type SendInput = ConstructorParameters<typeof SendMessageCommand>[0];

function recordingSqs() {
  const sent: SendInput[] = [];
  const client = { send: async (command: { input: SendInput }) => void sent.push(command.input) };
  return { sent, client: client as unknown as SQSClient };
}

const change = aChange({ tenant: 'demo', sourceEventId: 'wh-1' });
const letter = letterOfQueued(change, {
  reason: 'klaviyo_invalid',
  detail: 'Klaviyo answered 400',
  attempts: 1,
  parkedAt: '2026-06-01T10:00:00.000Z',
});

describe('deduplication ids of moves', () => {
  it('are the same for a retried move and differ between moves and kinds of move', () => {
    const first = { messageId: 'a1b2', sentAt: 1_780_000_000_000 };
    expect(deduplicationIdOfMove('parked', first)).toBe(deduplicationIdOfMove('parked', { ...first }));
    expect(deduplicationIdOfMove('parked', first)).not.toBe(
      deduplicationIdOfMove('parked', { messageId: 'c3d4', sentAt: first.sentAt }),
    );
    expect(deduplicationIdOfMove('parked', first)).not.toBe(deduplicationIdOfMove('replayed', first));
    // A message moved back with its id kept (SQS's own redrive) was sent again: another move.
    expect(deduplicationIdOfMove('parked', first)).not.toBe(
      deduplicationIdOfMove('parked', { ...first, sentAt: first.sentAt + 1 }),
    );
    expect(deduplicationIdOfMove('parked', { messageId: 'x'.repeat(200) })).toMatch(/^[0-9a-f]{64}$/);
  });

  it('parks the same change twice, from two deliveries, as two letters; a retried parking as one', async () => {
    const { sent, client } = recordingSqs();
    const deadLetters = createSqsDeadLetters(client, 'dlq.fifo');

    await deadLetters.park(letter, { messageId: 'delivery-1', sentAt: 1 });
    await deadLetters.park(letter, { messageId: 'delivery-1', sentAt: 1 });
    // The same change replayed: a new message on the changes queue, parked again.
    await deadLetters.park(letter, { messageId: 'replayed-1', sentAt: 2 });

    const ids = sent.map((input) => input.MessageDeduplicationId);
    expect(ids[0]).toBe(ids[1]);
    expect(ids[2]).not.toBe(ids[0]);
    expect(new Set(sent.map((input) => input.MessageGroupId))).toEqual(new Set(['demo:1001']));
  });

  it("keeps the delivery id as the intake's deduplication id, for a letter and for a change", async () => {
    const { sent, client } = recordingSqs();
    await createSqsDeadLetters(client, 'dlq.fifo').park(letter);
    await createSqsChangeQueue(client, 'changes.fifo').enqueue(change);

    expect(sent.map((input) => input.MessageDeduplicationId)).toEqual([
      `parked:${change.source}:wh-1`,
      'demo:wh-1',
    ]);
    expect(JSON.parse(sent[1]?.MessageBody ?? '')).toMatchObject({ kind: 'identityChange' });
  });
});
