import { describe, expect, it } from 'vitest';
import { formatCount, formatMoved, matches, replay } from '../../cli/commands/replay.js';
import type { PeekedMessage } from '../../lib/adapters/sqs-peek.js';
import { type DeadLetter, readQueuedMessage } from '../../lib/dead-letter.js';
import type { IdentityChange } from '../../lib/identity-change.js';
import { captureIo } from '../support/cli.js';

/** What replay moves and what it says, without a queue; moving itself is in test/integration/cli-replay.test.ts. */
const change: IdentityChange = {
  tenant: 'demo',
  source: 'erp',
  externalId: 'C-42',
  email: 'ada.lovelace@example.com',
  occurredAt: '2026-06-01T10:00:00.000Z',
  sourceEventId: 'msg_1',
  receivedAt: '2026-06-01T10:00:01.000Z',
};

const letter = (extra: Partial<DeadLetter> = {}): DeadLetter => ({
  reason: 'klaviyo_invalid',
  detail: 'Klaviyo answered 400',
  tenant: 'demo',
  source: 'erp',
  sourceEventId: 'msg_1',
  change,
  parkedAt: '2026-06-01T10:00:05.000Z',
  ...extra,
});

const message = (body: unknown, extra: Partial<PeekedMessage> = {}): PeekedMessage => {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  return {
    messageId: 'm-1',
    content: readQueuedMessage(text),
    bodyLength: text.length,
    sentAt: '2026-06-02T08:00:00.000Z',
    groupId: 'demo:C-42',
    ...extra,
  };
};

const wanted = { reason: 'klaviyo_invalid', since: undefined };

describe('what replay moves', () => {
  it('moves parked changes of the reason asked for, and changes SQS moved there as retries_exhausted', () => {
    expect(matches(message(letter()), wanted)).toBe('move');
    expect(matches(message(letter({ reason: 'duplicate_profile' })), wanted)).toBe('leave');
    expect(matches(message(change), wanted)).toBe('leave');
    expect(matches(message(change), { reason: 'retries_exhausted', since: undefined })).toBe('move');
  });

  it('never moves an unusable payload or an unreadable message', () => {
    const payload = letter({ change: undefined, payload: '{"id":1}', source: 'shopify' });
    expect(matches(message(payload), wanted)).toBe('unusable');
    expect(matches(message('not json'), { reason: 'unreadable', since: undefined })).toBe('unusable');
  });

  it('leaves a letter the worker parked again after replay began moving, for the next replay', () => {
    const began = Date.parse('2026-06-02T08:00:00.000Z');
    expect(matches(message(letter()), { ...wanted, sentBefore: began + 1 })).toBe('move');
    expect(matches(message(letter()), { ...wanted, sentBefore: began })).toBe('leave');
    const report = { moved: [], left: [message(letter())], onQueue: 1, problem: undefined };
    expect(formatMoved(report, { ...wanted, sentBefore: began })).toContain(
      '1 letter parked again while replay ran (the cause may not be fixed yet): left for the next replay.',
    );
  });

  it('with --since, leaves letters parked before it', () => {
    const since = Date.parse('2026-06-01T10:00:05.000Z');
    expect(matches(message(letter()), { ...wanted, since })).toBe('move');
    expect(matches(message(letter()), { ...wanted, since: since + 1 })).toBe('leave');
  });
});

describe('what replay says', () => {
  it('counts what the first letters of the groups show, masked, and says more may be behind them', () => {
    const text = formatCount(
      'dlq.fifo',
      wanted,
      7,
      3,
      [message(letter())],
      [message(letter({ change: undefined, payload: 'x' }))],
    );
    expect(text.split('\n')).toEqual([
      'Dead-letter queue dlq.fifo: about 7 messages; 3 read (the first waiting of each message group), 1 with reason klaviyo_invalid to replay.',
      expect.stringMatching(
        /^ {2}2026-06-01T10:00:05\.000Z {2}klaviyo_invalid {2}demo {2}customer C-42 {2}\[msg_1\]/,
      ),
      '1 letter with reason klaviyo_invalid carries no change to replay (unusable payloads): left on the queue.',
      expect.stringMatching(
        /^More may be behind them: a FIFO queue shows only the first letter of each customer/,
      ),
      '',
    ]);
    expect(text).not.toContain('ada.lovelace');
  });

  it('after moving, names how many customers another reason holds back, and what to do', () => {
    const blocking = message(letter({ reason: 'duplicate_profile' }), { groupId: 'demo:C-43' });
    const text = formatMoved(
      { moved: [message(letter())], left: [blocking], onQueue: 4, problem: undefined },
      wanted,
    );
    expect(text.split('\n')).toEqual([
      "Moved 1 letter with reason klaviyo_invalid to the changes queue, each customer's in order.",
      expect.stringMatching(
        /^1 customer's message group begins with a letter of another reason .*replay that first letter's reason too/,
      ),
      'About 2 messages stayed out of reach behind those letters.',
      '',
    ]);
  });

  it('needs a reason, and the queues', async () => {
    const { io, written } = captureIo({});
    expect(await replay([], io)).toBe(2);
    expect(written.stderr).toContain('--reason is required');
    expect(await replay(['--reason', 'klaviyo_invalid', '--yes'], io)).toBe(2);
    expect(written.stderr).toContain('DEAD_LETTER_QUEUE_URL');
  });

  it('refuses a reason no letter is parked with, in one line naming the ones there are', async () => {
    const env = { DEAD_LETTER_QUEUE_URL: 'http://127.0.0.1:1/dlq.fifo', IDENTITY_CHANGES_QUEUE_URL: 'x' };
    const { io, written } = captureIo(env);

    expect(await replay(['--reason', 'klaviyo-invalid', '--yes'], io)).toBe(2);

    expect(written.stdout).toBe('');
    expect(written.stderr.trim().split('\n')).toEqual([
      expect.stringContaining('--reason klaviyo-invalid is no reason a letter is parked with; one of:'),
    ]);
    expect(written.stderr).toContain('identifier_held_by_other_customer');
    expect(written.stderr).toContain('retries_exhausted');
    expect(written.stderr).toContain('klaviyo_<code>');
  });

  it('lists the reasons in its help', async () => {
    const { io, written } = captureIo({});
    expect(await replay(['--help'], io)).toBe(0);
    expect(written.stdout).toMatch(/one of: .*duplicate_profile.*klaviyo_<code>/s);
  });
});
