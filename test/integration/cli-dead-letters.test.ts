import {
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  PurgeQueueCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { beforeEach, describe, expect, it } from 'vitest';
import { deadLetters } from '../../cli/commands/dead-letters.js';
import type { ClassifiedLetter } from '../../cli/dead-letters/classify.js';
import { queueNameOf } from '../../cli/dead-letters/format.js';
import { peekQueue } from '../../lib/adapters/sqs-peek.js';
import { createSqsDeadLetters } from '../../lib/adapters/sqs-queues.js';
import type { DeadLetter } from '../../lib/dead-letter.js';
import type { IdentityChange } from '../../lib/identity-change.js';
import { LOCAL_CREDENTIALS } from '../../scripts/local-stack/peers.js';
import { captureIo, rawControlCharacters } from '../support/cli.js';
import { usePeersInEnv } from '../support/local-peers.js';

/**
 * `identity-sync dead-letters` against fauxqs: the FIFO dead-letter queue of the local peers, read
 * with the real SQS client. The report must leave the queue as it found it.
 */
const peers = usePeersInEnv();
let serial = 0;

beforeEach(async () => {
  await peers.sqs.send(new PurgeQueueCommand({ QueueUrl: peers.deadLetterQueueUrl }));
  serial++;
});

const ADA = { email: 'ada.lovelace@example.com', phone: '+14155550123' };
const GRACE = { email: 'grace.hopper@example.com', phone: '+14155550177' };
/** Every form in which a whole identifier could leak. */
const PERSONAL = [
  ADA.email,
  ADA.phone,
  GRACE.email,
  GRACE.phone,
  'lovelace',
  'hopper',
  '4155550123',
  '4155550177',
];

function changeOf(externalId: string, who: typeof ADA, sourceEventId: string): IdentityChange {
  return {
    tenant: 'demo',
    source: 'erp',
    externalId,
    email: who.email,
    phoneNumber: who.phone,
    occurredAt: '2025-01-01T00:00:00.000Z',
    sourceEventId,
    receivedAt: '2025-01-01T00:00:01.000Z',
  };
}

/**
 * What the dead-letter queue holds in production: letters the worker parked (with a reason), a
 * change SQS redrove after repeated transient failures (the plain queued change, no reason), and
 * junk. Each in its own message group: one customer's messages are one group.
 */
async function fillDeadLetterQueue() {
  const run = serial;
  const ada = changeOf(`C-42-${run}`, ADA, `evt-1-${run}`);
  const parked = createSqsDeadLetters(peers.sqs, peers.deadLetterQueueUrl);
  await parked.park({
    reason: 'klaviyo_invalid',
    detail: `Klaviyo answered 400 to PATCH /api/profiles/01P: ${ADA.email} is not accepted, nor ${ADA.phone}`,
    tenant: 'demo',
    source: 'erp',
    sourceEventId: ada.sourceEventId,
    change: ada,
    context: { status: 400, code: 'invalid', pointer: '/data/attributes/email' },
    parkedAt: '2025-01-01T00:00:05.000Z',
  });
  const other = changeOf(`C-43-${run}`, ADA, `evt-2-${run}`);
  await parked.park(duplicateLetter(other));
  const grace = changeOf(`C-77-${run}`, GRACE, `evt-3-${run}`);
  await send(JSON.stringify(grace), `demo:${grace.externalId}`, `demo:${grace.sourceEventId}`);
  await send(`${GRACE.email} <- not a letter at all`, 'junk', `junk-${run}`);
  return { ada, grace };
}

const duplicateLetter = (change: IdentityChange): DeadLetter => ({
  reason: 'duplicate_profile',
  detail: "Profile 01H duplicates this customer's profile 01P; the tenant's policy is to park",
  tenant: change.tenant,
  source: change.source,
  sourceEventId: change.sourceEventId,
  change,
  context: { profileId: '01P', holderId: '01H' },
  parkedAt: '2025-01-02T00:00:05.000Z',
});

const send = (body: string, group: string, dedup: string) =>
  peers.sqs.send(
    new SendMessageCommand({
      QueueUrl: peers.deadLetterQueueUrl,
      MessageBody: body,
      MessageGroupId: group,
      MessageDeduplicationId: dedup,
    }),
  );

async function queueCounts() {
  const { Attributes = {} } = await peers.sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: peers.deadLetterQueueUrl,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  );
  return {
    visible: Number(Attributes.ApproximateNumberOfMessages),
    inFlight: Number(Attributes.ApproximateNumberOfMessagesNotVisible),
  };
}

/** Receives and deletes everything, as a consumer would: the bodies in the order SQS hands them out. */
async function takeAll(): Promise<string[]> {
  const bodies: string[] = [];
  for (;;) {
    const { Messages = [] } = await peers.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: peers.deadLetterQueueUrl,
        MaxNumberOfMessages: 10,
        VisibilityTimeout: 30,
      }),
    );
    if (Messages.length === 0) return bodies;
    for (const message of Messages) {
      bodies.push(message.Body ?? '');
      await peers.sqs.send(
        new DeleteMessageCommand({
          QueueUrl: peers.deadLetterQueueUrl,
          ReceiptHandle: message.ReceiptHandle,
        }),
      );
    }
  }
}

async function run(args: string[]) {
  const { io, written } = captureIo(peers.env);
  const code = await deadLetters(args, io);
  return { code, ...written };
}

describe('identity-sync dead-letters', () => {
  it('reports parked, redriven and unreadable letters by reason, masked, and leaves them all on the queue', async () => {
    const { ada, grace } = await fillDeadLetterQueue();

    const first = await run([]);

    expect(first.code).toBe(0);
    expect(first.stderr).toBe('');
    const lines = first.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe(
      `Dead-letter queue ${queueNameOf(peers.deadLetterQueueUrl)}: 4 messages read (about 4 on the queue), all left in place.`,
    );
    const summary = lines.slice(2, 6).map((line) => line.trim().split(/\s+/).slice(0, 2));
    expect(summary).toEqual([
      ['duplicate_profile', '1'],
      ['klaviyo_invalid', '1'],
      ['retries_exhausted', '1'],
      ['unreadable', '1'],
    ]);
    expect(lines[2]).toMatch(/ newest 2025-01-02T00:00:05\.000Z$/);
    expect(lines[7]).toBe('Newest first:');
    const letters = lines.slice(8);
    expect(letters).toHaveLength(4);
    // The redriven change and the junk were sent just now; the parked letters carry their parkedAt.
    expect(
      letters
        .slice(0, 2)
        .map((line) => line.split(/\s+/)[1])
        .sort(),
    ).toEqual(['retries_exhausted', 'unreadable']);
    expect(letters[2]).toBe(
      `2025-01-02T00:00:05.000Z  duplicate_profile  demo  customer C-43-${serial}  [evt-2-${serial}]  ` +
        "Profile 01H duplicates this customer's profile 01P; the tenant's policy is to park",
    );
    expect(letters[3]).toBe(
      `2025-01-01T00:00:05.000Z  klaviyo_invalid    demo  customer ${ada.externalId}  [${ada.sourceEventId}]  ` +
        'Klaviyo answered 400 to PATCH /api/profiles/01P: a***@example.com is not accepted, nor ********0123',
    );
    expect(first.stdout).toMatch(
      new RegExp(
        `retries_exhausted +demo  customer ${grace.externalId}  \\[${grace.sourceEventId}\\]  .*received 1 time$`,
        'm',
      ),
    );
    expect(first.stdout).toMatch(
      /unreadable +\(no tenant\) {2}no customer {2}\[message .+\] {2}the body is not JSON/,
    );
    for (const value of PERSONAL) expect(first.stdout).not.toContain(value);

    // Nothing was consumed, and nothing is left hidden: a second read sees the same four at once.
    expect(await queueCounts()).toEqual({ visible: 4, inFlight: 0 });
    const second = await run([]);
    expect(second.code).toBe(0);
    expect(second.stdout.split('\n').slice(0, 6)).toEqual(first.stdout.split('\n').slice(0, 6));
    expect(second.stdout).toContain('received 2 times');
    expect(await queueCounts()).toEqual({ visible: 4, inFlight: 0 });

    expect(await takeAll()).toHaveLength(4);
  });

  it("reads only the head of a customer's message group, says so, and keeps the group's order", async () => {
    const first = changeOf(`C-50-${serial}`, ADA, `evt-a-${serial}`);
    const second = { ...first, sourceEventId: `evt-b-${serial}`, occurredAt: '2025-01-03T00:00:00.000Z' };
    const parked = createSqsDeadLetters(peers.sqs, peers.deadLetterQueueUrl);
    await parked.park(duplicateLetter(first));
    await parked.park(duplicateLetter(second));

    const report = await run([]);

    // SQS may hand out several messages of a group in one receive; fauxqs hands out one.
    expect(report.code).toBe(0);
    expect(report.stdout).toContain(': 1 message read (about 2 on the queue), all left in place.\n');
    expect(report.stdout).toContain(
      'Not all were read: unless messages are removed, a FIFO queue shows only',
    );
    expect(report.stdout).toContain(`[${first.sourceEventId}]`);
    expect(await queueCounts()).toEqual({ visible: 2, inFlight: 0 });
    // A redrive replays the customer's letters in the order they were parked.
    const events = (await takeAll()).map((body) => (JSON.parse(body) as DeadLetter).sourceEventId);
    expect(events).toEqual([first.sourceEventId, second.sourceEventId]);
  });

  it("shows the customer an ERP intake letter names; the writer fills a parked change's customer in", async () => {
    const parked = createSqsDeadLetters(peers.sqs, peers.deadLetterQueueUrl);
    await parked.park({
      reason: 'invalid_change',
      detail: `/phoneNumber: ${ADA.email} is not a phone number`,
      tenant: 'acme',
      source: 'erp',
      sourceEventId: `msg-${serial}:1`,
      externalId: `C-60-${serial}`,
      payload: JSON.stringify({ externalId: `C-60-${serial}`, phoneNumber: ADA.email }),
      parkedAt: '2025-01-01T00:00:05.000Z',
    });
    const ada = changeOf(`C-61-${serial}`, ADA, `evt-c-${serial}`);
    await parked.park(duplicateLetter(ada));

    const report = await run([]);

    expect(report.stdout).toContain(
      `  acme  customer C-60-${serial}  [msg-${serial}:1]  /phoneNumber: a***@example.com`,
    );
    expect(report.stdout).toContain(`  demo  customer ${ada.externalId}  [${ada.sourceEventId}]  `);
    const bodies = (await takeAll()).map((body) => JSON.parse(body) as DeadLetter);
    expect(bodies.map((letter) => letter.externalId).sort()).toEqual([`C-60-${serial}`, ada.externalId]);
  });

  it("prints an ERP's ids and details with their control characters and ANSI escapes neutralised", async () => {
    const parked = createSqsDeadLetters(peers.sqs, peers.deadLetterQueueUrl);
    // What an ERP could send: a screen clear, a window title, a carriage return, a C1 CSI, a bidi override.
    const hostile = `C-66-${serial}\u001b[2J\u001b]0;owned\u0007\r\u009b31m\u202eevil`;
    await parked.park({
      reason: 'invalid_change',
      detail: `bad id \u001b[31m${hostile}`,
      tenant: 'acme',
      source: 'erp',
      sourceEventId: `msg-${serial}:\u001b[1A`,
      externalId: hostile,
      payload: JSON.stringify({ externalId: hostile }),
      parkedAt: '2025-01-01T00:00:05.000Z',
    });

    const report = await run([]);
    const json = await run(['--json']);

    for (const output of [report.stdout, json.stdout]) expect(rawControlCharacters(output)).toEqual([]);
    expect(report.stdout).toContain(
      `customer C-66-${serial}\\x1b[2J\\x1b]0;owned\\x07\\r\\x9b31m\\u202eevil  [msg-${serial}:\\x1b[1A]`,
    );
    // The JSON is the same value, escaped.
    const [letter] = JSON.parse(json.stdout) as ClassifiedLetter[];
    expect(letter?.externalId).toBe(hostile);
    await takeAll();
  });

  it('refuses to park a letter that does not fit its schema, and sends nothing', async () => {
    const parked = createSqsDeadLetters(peers.sqs, peers.deadLetterQueueUrl);
    const bad = {
      ...duplicateLetter(changeOf(`C-62-${serial}`, ADA, `evt-d-${serial}`)),
      parkedAt: 'yesterday',
    };
    await expect(parked.park(bad)).rejects.toThrow('dead letter does not fit its schema: parkedAt:');
    expect(await queueCounts()).toEqual({ visible: 0, inFlight: 0 });
  });

  it('peeks: each message read as a change, a letter or unreadable, with the count on the queue', async () => {
    const { ada, grace } = await fillDeadLetterQueue();

    const peek = await peekQueue(peers.sqs, peers.deadLetterQueueUrl, 10);

    expect(peek.onQueue).toBe(4);
    expect(peek.problem).toBeUndefined();
    const byKind = Object.fromEntries(peek.messages.map((m) => [m.content.kind, m]));
    expect(Object.keys(byKind).sort()).toEqual(['letter', 'queued', 'unreadable']);
    expect(byKind.queued).toMatchObject({ content: { queued: grace }, receiveCount: 1 });
    const letters = peek.messages.flatMap((m) => (m.content.kind === 'letter' ? [m] : []));
    expect(letters.map((m) => m.reasonAttribute).sort()).toEqual(['duplicate_profile', 'klaviyo_invalid']);
    expect(letters.map((m) => m.content)).toContainEqual({
      kind: 'letter',
      letter: expect.objectContaining({ externalId: ada.externalId, change: ada }),
    });
    expect(byKind.unreadable?.content).toEqual({ kind: 'unreadable', problem: 'the body is not JSON' });
    expect(Date.now() - Date.parse(String(byKind.queued?.sentAt))).toBeLessThan(60_000);
    expect(await queueCounts()).toEqual({ visible: 4, inFlight: 0 });
  });

  it('--json gives the classified letters, masked; --reason keeps one reason; both runs see the same messages', async () => {
    const { ada, grace } = await fillDeadLetterQueue();

    const json = await run(['--json']);
    expect(json.code).toBe(0);
    for (const value of PERSONAL) expect(json.stdout).not.toContain(value);
    const letters = JSON.parse(json.stdout) as ClassifiedLetter[];
    expect(letters.map((letter) => letter.reason).sort()).toEqual([
      'duplicate_profile',
      'klaviyo_invalid',
      'retries_exhausted',
      'unreadable',
    ]);
    expect(letters.find((letter) => letter.reason === 'klaviyo_invalid')).toMatchObject({
      kind: 'parked',
      tenant: 'demo',
      source: 'erp',
      externalId: ada.externalId,
      sourceEventId: ada.sourceEventId,
      parkedAt: '2025-01-01T00:00:05.000Z',
      context: { status: 400, code: 'invalid' },
      change: { email: 'a***@example.com', phoneNumber: '********0123' },
    });
    expect(letters.find((letter) => letter.reason === 'duplicate_profile')).toMatchObject({
      externalId: `C-43-${serial}`,
      change: { email: 'a***@example.com' },
    });
    expect(letters.find((letter) => letter.reason === 'duplicate_profile')?.context).toEqual({
      profileId: '01P',
      holderId: '01H',
    });
    const redriven = letters.find((letter) => letter.reason === 'retries_exhausted');
    expect(redriven).toMatchObject({
      kind: 'redriven',
      externalId: grace.externalId,
      receiveCount: 1,
      change: { email: 'g***@example.com' },
    });
    expect(Date.now() - Date.parse(String(redriven?.sentAt))).toBeLessThan(60_000);

    const filtered = await run(['--json', '--reason', 'retries_exhausted']);
    const only = JSON.parse(filtered.stdout) as ClassifiedLetter[];
    expect(only).toHaveLength(1);
    expect(only[0]).toMatchObject({ messageId: redriven?.messageId, receiveCount: 2 });

    const text = await run(['--reason', 'duplicate_profile']);
    expect(text.code).toBe(0);
    const lines = text.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(
      /: 4 messages read \(about 4 on the queue\), all left in place; 1 with reason duplicate_profile\.$/,
    );
    expect(lines.filter((line) => /^\d{4}-/.test(line))).toEqual([
      expect.stringContaining('duplicate_profile'),
    ]);
    expect(text.stdout).not.toContain('klaviyo_invalid');

    const again = JSON.parse((await run(['--json'])).stdout) as ClassifiedLetter[];
    expect(again.map((letter) => letter.messageId).sort()).toEqual(
      letters.map((letter) => letter.messageId).sort(),
    );
    expect(await queueCounts()).toEqual({ visible: 4, inFlight: 0 });
  });

  it('reads past the first ten messages, up to --limit, and leaves every one visible', async () => {
    for (let i = 0; i < 12; i++) await send(`junk ${i}`, `group-${i}`, `many-${serial}-${i}`);

    const all = await run(['--json']);
    expect(JSON.parse(all.stdout)).toHaveLength(12);
    const limited = await run(['--limit', '11']);
    expect(limited.code).toBe(0);
    expect(limited.stdout).toContain(': 11 messages read (about 12 on the queue)');
    expect(limited.stdout).toContain('Stopped at --limit 11.');
    expect(limited.stdout).toMatch(/\n {2}unreadable +11 /);
    expect(await queueCounts()).toEqual({ visible: 12, inFlight: 0 });
  });

  it('says so when the queue is empty, exiting 0', async () => {
    const { code, stdout } = await run(['--queue-url', peers.deadLetterQueueUrl]);
    expect(code).toBe(0);
    expect(stdout).toBe(
      `Dead-letter queue ${queueNameOf(peers.deadLetterQueueUrl)}: 0 messages read (about 0 on the queue), all left in place.\nNothing is parked.\n`,
    );
  });

  it('exits 1 when SQS fails, e.g. no such queue', async () => {
    const missing = peers.deadLetterQueueUrl.replace(/[^/]+$/, 'no-such-queue.fifo');
    const { io, written } = captureIo({ ...peers.env, DEAD_LETTER_QUEUE_URL: missing });
    expect(await deadLetters([], io)).toBe(1);
    expect(written.stderr).toContain(`identity-sync: cannot read the queue ${missing}`);
    expect(written.stdout).toBe('');
  });

  it('makes what it read visible again when a later receive fails', async () => {
    for (let i = 0; i < 12; i++) await send(`junk ${i}`, `group-${i}`, `failing-${serial}-${i}`);
    const sqs = new SQSClient({
      endpoint: peers.env.AWS_ENDPOINT_URL_SQS,
      region: 'us-east-1',
      credentials: LOCAL_CREDENTIALS,
    });
    let receives = 0;
    sqs.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'ReceiveMessageCommand' && ++receives === 2)
          throw new Error('connection reset');
        return next(args);
      },
      { step: 'initialize' },
    );
    try {
      await expect(peekQueue(sqs, peers.deadLetterQueueUrl, 100)).rejects.toThrow(
        `cannot read the queue ${peers.deadLetterQueueUrl}: connection reset`,
      );
    } finally {
      sqs.destroy();
    }
    expect(receives).toBe(2);
    expect(await queueCounts()).toEqual({ visible: 12, inFlight: 0 });
  });
});
