import { DeleteMessageCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { describe, expect, it } from 'vitest';
import { replay } from '../../cli/commands/replay.js';
import { createSqsChangeQueue, createSqsDeadLetters } from '../../lib/adapters/sqs-queues.js';
import type { DeadLetter } from '../../lib/dead-letter.js';
import type { IdentityChange } from '../../lib/identity-change.js';
import type { KlaviyoSandbox } from '../../local/klaviyo-sandbox.js';
import { captureIo } from '../support/cli.js';
import { type Harness, useHarness } from '../support/harness.js';

/**
 * `identity-sync replay` against the local peers: the FIFO changes queue and dead-letter queue
 * (fauxqs), the real worker through the harness's poller, the Klaviyo sandbox.
 */
let harness: Harness;
let klaviyo: KlaviyoSandbox;
let serial = 0;
useHarness({}, (started) => {
  harness = started;
  klaviyo = started.peers.klaviyo as KlaviyoSandbox;
});

function changeOf(externalId: string, sourceEventId: string, email: string): IdentityChange {
  return {
    tenant: 'demo',
    source: 'erp',
    externalId,
    email,
    occurredAt: `2026-01-01T00:00:0${sourceEventId.at(-1)}.000Z`,
    sourceEventId,
    receivedAt: '2026-01-01T00:00:10.000Z',
  };
}

const letterOf = (
  change: IdentityChange,
  reason: string,
  parkedAt = '2026-01-02T00:00:00.000Z',
): DeadLetter => ({
  reason,
  detail: `parked for the test (${reason})`,
  tenant: change.tenant,
  source: change.source,
  sourceEventId: change.sourceEventId,
  change,
  parkedAt,
});

async function run(args: string[]) {
  const { io, written } = captureIo(harness.peers.env);
  const code = await replay(args, io);
  return { code, ...written };
}

/** Takes everything waiting on the changes queue, in the order SQS hands it out (per group, FIFO). */
async function takeChanges(): Promise<string[]> {
  const { sqs, queueUrl } = harness.peers;
  const events: string[] = [];
  for (;;) {
    const { Messages = [] } = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, VisibilityTimeout: 30 }),
    );
    if (Messages.length === 0) return events;
    for (const message of Messages) {
      events.push((JSON.parse(message.Body ?? '{}') as DeadLetter).sourceEventId);
      await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: message.ReceiptHandle }));
    }
  }
}

describe('identity-sync replay', () => {
  it('moves a change parked on a Klaviyo 400 back once the cause is fixed, and the worker applies it', async () => {
    const run_ = ++serial;
    const profile = klaviyo.seedProfile({
      external_id: `R-${run_}`,
      email: `replay.old.${run_}@example.com`,
    });
    const change = changeOf(`R-${run_}`, `evt-replay-${run_}-1`, `replay.new.${run_}@example.com`);
    // Klaviyo refuses the write once (as for a value it takes for invalid): the worker parks the change.
    klaviyo.injectFaults({ status: 400, method: 'PATCH', times: 1 });
    await createSqsChangeQueue(harness.peers.sqs, harness.peers.queueUrl).enqueue(change);
    await harness.drain();
    expect(klaviyo.getProfile(profile.id)?.email).toBe(`replay.old.${run_}@example.com`);

    // The cause is gone (the fault used up); replay, then the worker runs again.
    const replayed = await run(['--reason', 'klaviyo_invalid', '--yes']);
    await harness.drain();

    expect(replayed.code).toBe(0);
    expect(replayed.stdout).toContain('1 with reason klaviyo_invalid to replay.');
    expect(replayed.stdout).toContain('Moved 1 letter with reason klaviyo_invalid to the changes queue');
    expect(klaviyo.getProfile(profile.id)?.email).toBe(`replay.new.${run_}@example.com`);
    expect(await harness.takeDeadLetters()).toEqual([]);
  });

  it('parks a replayed change again while Klaviyo still refuses it, and applies it once replayed after the fix', async () => {
    const run_ = ++serial;
    const customers = [1, 2, 3].map((n) => {
      const externalId = `RR-${run_}-${n}`;
      const profile = klaviyo.seedProfile({
        external_id: externalId,
        email: `rr.old.${run_}.${n}@example.com`,
      });
      return {
        profile,
        change: changeOf(externalId, `evt-rr-${run_}-${n}`, `rr.new.${run_}.${n}@example.com`),
      };
    });
    const toReplay = async () =>
      (await run(['--reason', 'klaviyo_invalid', '--dry-run'])).stdout.match(
        /(\d+) with reason klaviyo_invalid to replay/,
      )?.[1];
    // Klaviyo takes the new emails for invalid (400) until the cause is fixed.
    klaviyo.injectFaults({ status: 400, method: 'PATCH', forMs: 120_000 });
    const queue = createSqsChangeQueue(harness.peers.sqs, harness.peers.queueUrl);
    for (const { change } of customers) await queue.enqueue(change);
    await harness.drain();
    expect(await toReplay()).toBe('3');

    // Replayed too early, within SQS's 5-minute deduplication window: each is parked again, none lost.
    expect((await run(['--reason', 'klaviyo_invalid', '--yes'])).stdout).toContain('Moved 3 letters');
    await harness.drain();
    expect(await toReplay()).toBe('3');
    for (const { profile } of customers) expect(klaviyo.getProfile(profile.id)?.email).toMatch(/^rr\.old\./);

    klaviyo.clearFaults();
    expect((await run(['--reason', 'klaviyo_invalid', '--yes'])).stdout).toContain('Moved 3 letters');
    await harness.drain();

    for (const { profile, change } of customers)
      expect(klaviyo.getProfile(profile.id)?.email).toBe(change.email);
    expect(await harness.takeDeadLetters()).toEqual([]);
  });

  it("reaches every letter of a customer's group, keeps its order, and says which groups another reason holds", async () => {
    const run_ = ++serial;
    const parked = createSqsDeadLetters(harness.peers.sqs, harness.peers.deadLetterQueueUrl);
    const ada = [1, 2, 3].map((n) => changeOf(`A-${run_}`, `evt-a-${run_}-${n}`, `ada.${n}@example.com`));
    for (const change of ada) await parked.park(letterOf(change, 'klaviyo_invalid'));
    // Bob's first letter has another reason: his second stays behind it.
    const bob = [1, 2].map((n) => changeOf(`B-${run_}`, `evt-b-${run_}-${n}`, `bob.${n}@example.com`));
    await parked.park(letterOf(bob[0] as IdentityChange, 'duplicate_profile'));
    await parked.park(letterOf(bob[1] as IdentityChange, 'klaviyo_invalid'));
    // An unusable payload with the same reason: never replayed.
    await parked.park({
      reason: 'klaviyo_invalid',
      detail: 'no change in it',
      tenant: 'demo',
      source: 'erp',
      sourceEventId: `payload-${run_}`,
      payload: '{"not":"a change"}',
      parkedAt: '2026-01-02T00:00:00.000Z',
    });

    const dryRun = await run(['--reason', 'klaviyo_invalid', '--dry-run']);
    expect(dryRun.code).toBe(0);
    // Before moving, only the first letter of each group shows.
    expect(dryRun.stdout).toContain(
      'about 6 messages; 3 read (the first waiting of each message group), 1 with reason klaviyo_invalid to replay.',
    );
    expect(dryRun.stdout).toContain('1 letter with reason klaviyo_invalid carries no change to replay');
    expect(dryRun.stdout).toContain('More may be behind them');
    expect(await takeChanges()).toEqual([]);

    const moved = await run(['--reason', 'klaviyo_invalid', '--yes']);

    expect(moved.code).toBe(0);
    expect(moved.stdout).toContain('Moved 3 letters with reason klaviyo_invalid');
    expect(moved.stdout).toContain("1 customer's message group begins with a letter of another reason");
    expect(moved.stdout).toContain('About 1 message stayed out of reach behind those letters.');
    expect(await takeChanges()).toEqual(ada.map((change) => change.sourceEventId));
    const left = await harness.takeDeadLetters();
    expect(left.map(({ letter }) => (letter as DeadLetter).sourceEventId).sort()).toEqual(
      [`evt-b-${run_}-1`, `evt-b-${run_}-2`, `payload-${run_}`].sort(),
    );
  });

  it('--since leaves older letters; without --yes and a terminal it refuses to move anything', async () => {
    const run_ = ++serial;
    const parked = createSqsDeadLetters(harness.peers.sqs, harness.peers.deadLetterQueueUrl);
    await parked.park(
      letterOf(
        changeOf(`O-${run_}`, `evt-old-${run_}-1`, 'old@example.com'),
        'klaviyo_invalid',
        '2025-12-01T00:00:00.000Z',
      ),
    );
    await parked.park(
      letterOf(
        changeOf(`N-${run_}`, `evt-new-${run_}-1`, 'new@example.com'),
        'klaviyo_invalid',
        '2026-02-01T00:00:00.000Z',
      ),
    );

    const asked = await run(['--reason', 'klaviyo_invalid']);
    expect(asked.code).toBe(2);
    expect(asked.stderr).toContain('pass --yes when no terminal can answer');

    const moved = await run(['--reason', 'klaviyo_invalid', '--since', '2026-01-01T00:00:00Z', '--yes']);
    expect(moved.code).toBe(0);
    expect(moved.stdout).toContain(
      'Moved 1 letter with reason klaviyo_invalid parked since 2026-01-01T00:00:00.000Z',
    );
    expect(await takeChanges()).toEqual([`evt-new-${run_}-1`]);
  });
});
