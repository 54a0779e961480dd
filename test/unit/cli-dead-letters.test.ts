import { describe, expect, it } from 'vitest';
import { deadLetters } from '../../cli/commands/dead-letters.js';
import { type ClassifiedLetter, classifyDeadLetter, newestFirst } from '../../cli/dead-letters/classify.js';
import { formatLetter, formatReport, summarizeByReason } from '../../cli/dead-letters/format.js';
import { identitySync } from '../../cli/identity-sync.js';
import type { PeekedMessage } from '../../lib/adapters/sqs-peek.js';
import { type DeadLetter, readQueuedMessage } from '../../lib/dead-letter.js';
import type { IdentityChange } from '../../lib/identity-change.js';
import { captureIo } from '../support/cli.js';

/** The classification and the report are pure; reading the queue is in test/integration/cli-dead-letters.test.ts. */
const change: IdentityChange = {
  tenant: 'demo',
  source: 'erp',
  externalId: 'C-42',
  email: 'ada.lovelace@example.com',
  phoneNumber: '+14155550123',
  previous: { email: 'ada.before@example.com', phoneNumber: '+14155550100' },
  occurredAt: '2026-06-01T10:00:00.000Z',
  sourceEventId: 'msg_1',
  receivedAt: '2026-06-01T10:00:01.000Z',
};

/** A message as the peek hands it over (lib/adapters/sqs-peek.ts): its body read, SQS's facts. */
function message(body: string, extra: Partial<PeekedMessage> = {}): PeekedMessage {
  return {
    messageId: 'm-1',
    content: readQueuedMessage(body),
    bodyLength: body.length,
    receiveCount: 6,
    sentAt: '2026-06-02T08:00:00.000Z',
    ...extra,
  };
}

const PERSONAL = ['ada.lovelace@example.com', 'ada.before@example.com', '+14155550123', '+14155550100'];

describe('classifying a dead-letter queue message', () => {
  it('reads a parked letter: its reason, the customer, detail and context, identifiers masked', () => {
    const letter: DeadLetter = {
      reason: 'klaviyo_invalid',
      detail:
        'Klaviyo answered 400 to POST /api/profiles: ada.lovelace@example.com is not valid; +14155550123 neither',
      tenant: 'demo',
      source: 'erp',
      sourceEventId: 'msg_1',
      change,
      context: { status: 400, code: 'invalid', errors: [{ message: 'taken: ada.before@example.com' }] },
      parkedAt: '2026-06-01T10:00:05.000Z',
    };

    const classified = classifyDeadLetter(
      message(JSON.stringify(letter), { reasonAttribute: 'klaviyo_invalid' }),
    );

    expect(classified).toEqual({
      messageId: 'm-1',
      kind: 'parked',
      reason: 'klaviyo_invalid',
      time: '2026-06-01T10:00:05.000Z',
      tenant: 'demo',
      source: 'erp',
      sourceEventId: 'msg_1',
      externalId: 'C-42',
      detail:
        'Klaviyo answered 400 to POST /api/profiles: a***@example.com is not valid; ********0123 neither',
      parkedAt: '2026-06-01T10:00:05.000Z',
      context: { status: 400, code: 'invalid', errors: [{ message: 'taken: a***@example.com' }] },
      change: {
        ...change,
        email: 'a***@example.com',
        phoneNumber: '********0123',
        previous: { email: 'a***@example.com', phoneNumber: '********0100' },
      },
      receiveCount: 6,
      sentAt: '2026-06-02T08:00:00.000Z',
    });
    for (const value of PERSONAL) expect(JSON.stringify(classified)).not.toContain(value);
  });

  it('reads an intake letter without a change: no customer, and the raw payload is not carried', () => {
    const classified = classifyDeadLetter(
      message(
        JSON.stringify({
          reason: 'invalid_payload',
          detail: 'no customer id',
          tenant: 'demo',
          source: 'shopify',
          sourceEventId: 'wh-1',
          payload: '{"email":"ada.lovelace@example.com"}',
          context: { topic: 'customers/update', shop: 'demo-shop.myshopify.com' },
          parkedAt: '2026-06-01T10:00:05Z',
        }),
      ),
    );
    expect(classified).toMatchObject({ kind: 'parked', reason: 'invalid_payload', tenant: 'demo' });
    expect(classified.externalId).toBeUndefined();
    expect(classified.time).toBe('2026-06-01T10:00:05.000Z');
    expect(JSON.stringify(classified)).not.toContain('ada.lovelace');
  });

  it('reads a plain queued change (moved by SQS redrive) as retries_exhausted, with the receive count and sent time', () => {
    const classified = classifyDeadLetter(message(JSON.stringify(change)));

    expect(classified).toMatchObject({
      kind: 'redriven',
      reason: 'retries_exhausted',
      time: '2026-06-02T08:00:00.000Z',
      sentAt: '2026-06-02T08:00:00.000Z',
      receiveCount: 6,
      tenant: 'demo',
      source: 'erp',
      externalId: 'C-42',
      sourceEventId: 'msg_1',
      change: { email: 'a***@example.com', previous: { phoneNumber: '********0100' } },
    });
    expect(classified.detail).toContain('received 6 times');
    for (const value of PERSONAL) expect(JSON.stringify(classified)).not.toContain(value);
  });

  it.each([
    ['not JSON', 'ada.lovelace@example.com wants out', 'the body is not JSON'],
    ['a JSON array', '["ada.lovelace@example.com"]', 'JSON, but not an object'],
    [
      'JSON without a reason, not a change',
      '{"email":"ada.lovelace@example.com"}',
      'neither a parked letter (no reason) nor an identity change: tenant:',
    ],
    [
      'a letter with an empty reason',
      '{"reason":"","detail":"x"}',
      'a parked letter that does not fit its shape: reason:',
    ],
  ])('calls %s unreadable, without echoing the body', (_, body, problem) => {
    const classified = classifyDeadLetter(message(body));
    expect(classified).toMatchObject({
      kind: 'unreadable',
      reason: 'unreadable',
      time: '2026-06-02T08:00:00.000Z',
    });
    expect(classified.detail).toContain(problem);
    expect(classified.detail).toContain(`(${body.length} characters)`);
    expect(JSON.stringify(classified)).not.toContain('ada.lovelace');
  });

  it('mentions the reason attribute of a letter whose body cannot be read', () => {
    const classified = classifyDeadLetter(message('{truncated', { reasonAttribute: 'invalid_change' }));
    expect(classified.reason).toBe('unreadable');
    expect(classified.detail).toContain('its reason attribute says invalid_change');
  });

  it('shows the customer an ERP intake letter names, though it has no change', () => {
    const erpLetter: DeadLetter = {
      reason: 'invalid_change',
      detail: '/phoneNumber: not a phone number',
      tenant: 'acme',
      source: 'erp',
      sourceEventId: 'msg_9:1',
      externalId: 'C-77',
      payload: '{"externalId":"C-77","phoneNumber":"ada.lovelace@example.com"}',
      parkedAt: '2026-06-01T10:00:05.000Z',
    };
    const classified = classifyDeadLetter(message(JSON.stringify(erpLetter)));
    expect(classified).toMatchObject({ kind: 'parked', externalId: 'C-77' });
    expect(classified.change).toBeUndefined();
    expect(formatLetter(classified)).toContain('  acme  customer C-77  [msg_9:1]  ');
  });

  it('leaves out what SQS did not say', () => {
    const classified = classifyDeadLetter({
      messageId: 'm-2',
      content: { kind: 'unreadable', problem: 'the body is not JSON' },
      bodyLength: 3,
    });
    expect(classified).toEqual({
      messageId: 'm-2',
      kind: 'unreadable',
      reason: 'unreadable',
      time: undefined,
      detail: 'the body is not JSON (3 characters)',
    });
  });
});

const letter = (
  reason: string,
  time: string | undefined,
  extra: Partial<ClassifiedLetter> = {},
): ClassifiedLetter => ({
  messageId: `${reason}-${time}`,
  kind: 'parked',
  reason,
  time,
  detail: `${reason} detail`,
  ...extra,
});

describe('the report', () => {
  const letters = [
    letter('duplicate_profile', '2026-06-01T10:00:00.000Z', {
      tenant: 'demo',
      externalId: '7',
      sourceEventId: 'e1',
    }),
    letter('retries_exhausted', '2026-06-03T10:00:00.000Z', { kind: 'redriven' }),
    letter('unreadable', undefined, { kind: 'unreadable' }),
    letter('duplicate_profile', '2026-06-02T10:00:00.000Z', {
      tenant: 'demo',
      externalId: '8',
      sourceEventId: 'e2',
    }),
  ];

  it('orders newest first, letters without a time last', () => {
    expect(newestFirst(letters).map((l) => l.time)).toEqual([
      '2026-06-03T10:00:00.000Z',
      '2026-06-02T10:00:00.000Z',
      '2026-06-01T10:00:00.000Z',
      undefined,
    ]);
  });

  it('summarises by reason: count and newest time, most frequent first', () => {
    expect(summarizeByReason(letters)).toEqual([
      { reason: 'duplicate_profile', count: 2, newest: '2026-06-02T10:00:00.000Z' },
      { reason: 'retries_exhausted', count: 1, newest: '2026-06-03T10:00:00.000Z' },
      { reason: 'unreadable', count: 1, newest: undefined },
    ]);
  });

  it('prints a heading, the summary, then one line per letter', () => {
    const text = formatReport(newestFirst(letters), { queue: 'dlq.fifo', read: 4, onQueue: 4, limit: 100 });
    expect(text.split('\n')).toEqual([
      'Dead-letter queue dlq.fifo: 4 messages read (about 4 on the queue), all left in place.',
      '',
      '  duplicate_profile       2  newest 2026-06-02T10:00:00.000Z',
      '  retries_exhausted       1  newest 2026-06-03T10:00:00.000Z',
      '  unreadable              1  newest (unknown)',
      '',
      'Newest first:',
      '2026-06-03T10:00:00.000Z  retries_exhausted  (no tenant)  no customer  [message retries_exhausted-2026-06-03T10:00:00.000Z]  retries_exhausted detail',
      '2026-06-02T10:00:00.000Z  duplicate_profile  demo  customer 8  [e2]  duplicate_profile detail',
      '2026-06-01T10:00:00.000Z  duplicate_profile  demo  customer 7  [e1]  duplicate_profile detail',
      '(unknown time)            unreadable         (no tenant)  no customer  [message unreadable-undefined]  unreadable detail',
      '',
    ]);
  });

  it('says when the limit or FIFO groups left messages unread, and when nothing is parked', () => {
    expect(formatReport(letters, { queue: 'q', read: 4, onQueue: 9, limit: 4 })).toContain(
      'Stopped at --limit 4.',
    );
    expect(formatReport(letters, { queue: 'q', read: 4, onQueue: 9, limit: 100 })).toContain(
      'Not all were read',
    );
    expect(formatReport([], { queue: 'q', read: 0, onQueue: 0, limit: 100 })).toBe(
      'Dead-letter queue q: 0 messages read (about 0 on the queue), all left in place.\nNothing is parked.\n',
    );
    expect(formatReport([], { queue: 'q', read: 4, onQueue: 4, limit: 100, reason: 'nope' })).toBe(
      'Dead-letter queue q: 4 messages read (about 4 on the queue), all left in place; 0 with reason nope.\nNo letters with reason nope.\n',
    );
  });

  it('shortens a long detail to its first line and 120 characters', () => {
    const line = formatLetter(
      letter('klaviyo_invalid', undefined, { detail: `${'x'.repeat(200)}\nsecond line` }),
    );
    expect(line.endsWith(`  ${'x'.repeat(119)}…`)).toBe(true);
  });
});

describe('identity-sync dead-letters: usage', () => {
  it('is listed in the help, and has its own', async () => {
    const top = captureIo();
    expect(await identitySync(['--help'], top.io)).toBe(0);
    expect(top.written.stdout).toMatch(/\n {2}dead-letters +report what is parked/);
    const own = captureIo();
    expect(await identitySync(['dead-letters', '--help'], own.io)).toBe(0);
    expect(own.written.stdout).toContain('Usage: identity-sync dead-letters [--queue-url URL]');
  });

  it.each([
    [[], {}, 'pass --queue-url or set DEAD_LETTER_QUEUE_URL'],
    [['--queue-url', ''], {}, 'pass --queue-url or set DEAD_LETTER_QUEUE_URL'],
    [
      ['--limit', '0'],
      { DEAD_LETTER_QUEUE_URL: 'http://127.0.0.1:9/q.fifo' },
      "--limit must be a positive integer, got '0'",
    ],
    [
      ['--limit', 'all'],
      { DEAD_LETTER_QUEUE_URL: 'http://127.0.0.1:9/q.fifo' },
      '--limit must be a positive integer',
    ],
    [['extra'], { DEAD_LETTER_QUEUE_URL: 'http://127.0.0.1:9/q.fifo' }, "Unexpected argument 'extra'"],
    [['--bogus'], { DEAD_LETTER_QUEUE_URL: 'http://127.0.0.1:9/q.fifo' }, "Unknown option '--bogus'"],
  ])('%j exits 2 with its line and where the help is', async (args, env, problem) => {
    const { io, written } = captureIo(env);
    expect(await deadLetters(args, io)).toBe(2);
    expect(written.stderr).toContain(problem);
    expect(written.stderr).toMatch(/\nsee identity-sync dead-letters --help\n$/);
    expect(written.stdout).toBe('');
  });
});
