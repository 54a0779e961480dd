import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { createMemorySyncState } from '../../lib/adapters/memory-sync-state.js';
import { loadConfig, type RetrySchedule } from '../../lib/config.js';
import { TransientError } from '../../lib/errors.js';
import { type IdentityChange, messageGroupOf, serializeQueuedChange } from '../../lib/identity-change.js';
import { defaultPolicies } from '../../lib/policies.js';
import type { KlaviyoProfiles, Redelivery } from '../../lib/ports.js';
import {
  type BatchDependencies,
  processQueuedBatch,
  type QueuedRecord,
} from '../../lib/sync/receive-batch.js';
import { redeliveryOf } from '../../lib/sync/redelivery.js';
import { declaredQueues } from '../../scripts/local-stack/declared-queues.js';
import {
  aChange,
  aCustomerMerge,
  aDeadLetterRecorder,
  aRecordingTelemetry,
  testIdentifierKeyFor,
} from '../support/factories.js';
import { createMemoryKlaviyo, klaviyoError } from '../support/memory-klaviyo.js';

/**
 * Waiting is not failing: a change meets Klaviyo or AWS slow, throttling or down and goes back to
 * the queue with a growing delay, as often as it takes, instead of reaching the dead-letter queue
 * after the queue's fifth receive. Shown here on a shortened clock: an hour of outage in memory.
 */
const ENV = {
  IDENTITY_CHANGES_QUEUE_URL: 'https://q.example/q',
  DEAD_LETTER_QUEUE_URL: 'https://q.example/d',
  SYNC_STATE_TABLE: 't',
};
const DEPLOYED: RetrySchedule = loadConfig(ENV).retries;
const HOUR_MS = 3_600_000;

async function deployedQueue() {
  const queue = (await declaredQueues('dev')).find(
    (declared) => declared.logicalId === 'IdentityChangesQueue',
  );
  const text = await readFile(new URL('../../infra/queues.yml', import.meta.url), 'utf8');
  const retentionSeconds = Number(/MessageRetentionPeriod: (\d+)/.exec(text)?.[1]);
  return {
    maxReceiveCount: queue?.redrive?.maxReceiveCount ?? 0,
    retentionSeconds,
    visibilitySeconds: Number(queue?.attributes.VisibilityTimeout),
  };
}

/** Receives of a change that keeps failing for `durationMs`, at the schedule's delays (and what it ends in). */
function receivesOver(durationMs: number, schedule: RetrySchedule) {
  let elapsedMs = 0;
  for (let attempt = 1; ; attempt++) {
    const redelivery = redeliveryOf({ attempt, ageMs: elapsedMs, outOfTime: false }, schedule);
    if (redelivery.park) return { receives: attempt, parked: true };
    elapsedMs += redelivery.delaySeconds * 1000;
    if (elapsedMs >= durationMs) return { receives: attempt + 1, parked: false };
  }
}

describe('the retry schedule (lib/sync/redelivery.ts)', () => {
  it('waits out a one-hour outage in a few receives, and parks only past MAX_CHANGE_AGE_HOURS', async () => {
    const { maxReceiveCount } = await deployedQueue();
    expect(DEPLOYED).toEqual({ firstDelaySeconds: 30, maxDelaySeconds: 900, maxChangeAgeMs: 72 * HOUR_MS });
    // 30 s, 1, 2, 4, 8, 15, 15… min: back within 15 minutes of Klaviyo's return.
    expect(receivesOver(HOUR_MS, DEPLOYED)).toEqual({ receives: 9, parked: false });
    const threeDays = receivesOver(100 * HOUR_MS, DEPLOYED);
    expect(threeDays.parked).toBe(true);
    expect(threeDays.receives).toBeLessThan(maxReceiveCount);
  });

  it('hands a change not tried for lack of time back at once, however old', () => {
    expect(redeliveryOf({ attempt: 40, ageMs: 100 * HOUR_MS, outOfTime: true }, DEPLOYED)).toEqual({
      park: false,
      delaySeconds: 0,
    });
  });

  it("keeps the queue's backstop above the worker's own limit, and below the retention for a crashing worker", async () => {
    const { maxReceiveCount, retentionSeconds, visibilitySeconds } = await deployedQueue();
    expect(DEPLOYED.maxChangeAgeMs).toBeLessThan(retentionSeconds * 1000);
    // A worker that crashes on a message: it comes back every visibility timeout, then SQS's redrive parks it.
    expect(maxReceiveCount * visibilitySeconds).toBeLessThan(retentionSeconds);
    expect(() => loadConfig({ ...ENV, MAX_CHANGE_AGE_HOURS: '96' })).toThrow(/MAX_CHANGE_AGE_HOURS/);
  });
});

const KLAVIYO_METHODS = [
  'findProfiles',
  'findProfilesAmong',
  'getProfile',
  'updateProfile',
  'importProfile',
  'mergeProfiles',
] as const satisfies (keyof KlaviyoProfiles)[];

/** The worker on a clock we move, against Klaviyo in memory that is down until `downUntil`. */
function worker(downUntil = 0) {
  let now = Date.parse('2026-05-01T12:00:00Z');
  const klaviyo = createMemoryKlaviyo();
  const state = createMemorySyncState();
  const deadLetters = aDeadLetterRecorder();
  const { telemetry } = aRecordingTelemetry();
  const handedBack: Redelivery[] = [];
  // Every call fails as Klaviyo down would until `downUntil` on our clock.
  const flaky = Object.fromEntries(
    KLAVIYO_METHODS.map((method) => [
      method,
      (...args: unknown[]) =>
        now < downUntil
          ? Promise.reject(klaviyoError(503, 'service_unavailable'))
          : (klaviyo[method] as (...a: unknown[]) => Promise<unknown>)(...args),
    ]),
  ) as unknown as KlaviyoProfiles;
  const deps: BatchDependencies = {
    state,
    audit: state,
    policiesFor: () => ({ ...defaultPolicies, dryRun: false }),
    identifierKeyFor: testIdentifierKeyFor,
    klaviyoFor: async () => flaky,
    deadLetters,
    telemetry,
    clock: () => new Date(now),
    redeliveries: { retryAfter: async (redeliveries) => void handedBack.push(...redeliveries) },
    retries: DEPLOYED,
  };
  return {
    klaviyo,
    state,
    deps,
    letters: deadLetters.letters,
    handedBack,
    now: () => now,
    advanceTo: (at: number) => {
      now = Math.max(now, at);
    },
  };
}

const queued = (change: IdentityChange, attempt: number, sentAt: number): QueuedRecord => ({
  id: change.sourceEventId,
  groupId: messageGroupOf(change),
  body: JSON.stringify(change),
  attempt,
  receiptHandle: `handle-${change.sourceEventId}-${attempt}`,
  sentAt,
});

describe('the worker under a one-hour Klaviyo outage (shortened clock)', () => {
  it('parks nothing, then applies every change in its order once Klaviyo is back', async () => {
    const start = Date.parse('2026-05-01T12:00:00Z');
    const w = worker(start + HOUR_MS);
    const customers = ['1001', '1002', '1003'];
    const profiles = customers.map((externalId) =>
      w.klaviyo.seed({ external_id: externalId, email: `${externalId}.0@example.com` }),
    );
    // A FIFO queue in memory: per customer, its changes in order, the first one visible at `visibleAt`.
    const groups = customers.map((externalId) => ({
      changes: [1, 2, 3].map((n) =>
        aChange({
          externalId,
          email: `${externalId}.${n}@example.com`,
          phoneNumber: undefined,
          occurredAt: new Date(start - 60_000 + n * 1000).toISOString(),
          sourceEventId: `${externalId}-${n}`,
        }),
      ),
      receives: 0,
      visibleAt: start,
    }));
    const emails: Record<string, string[]> = {};
    let invocations = 0;
    while (groups.some((group) => group.changes.length > 0) && invocations++ < 1_000) {
      const open = groups.filter((group) => group.changes.length > 0);
      w.advanceTo(Math.min(...open.map((group) => group.visibleAt)));
      const batch = open.filter((group) => group.visibleAt <= w.now());
      const records = batch.map((group) =>
        queued(group.changes[0] as IdentityChange, ++group.receives, start),
      );
      w.handedBack.length = 0;
      const { failed } = await processQueuedBatch(records, w.deps);
      for (const [index, group] of batch.entries()) {
        const record = records[index] as QueuedRecord;
        if (failed.some((f) => f.id === record.id)) {
          const delay = w.handedBack.find((h) => h.receiptHandle === record.receiptHandle)?.delaySeconds;
          group.visibleAt = w.now() + (delay ?? 360) * 1000;
          continue;
        }
        const change = group.changes.shift() as IdentityChange;
        emails[change.externalId] = [...(emails[change.externalId] ?? []), change.email as string];
        group.receives = 0;
      }
    }
    expect(w.letters).toEqual([]);
    expect(w.now()).toBeGreaterThanOrEqual(start + HOUR_MS);
    for (const [index, externalId] of customers.entries()) {
      expect(emails[externalId]).toEqual([1, 2, 3].map((n) => `${externalId}.${n}@example.com`));
      expect(w.klaviyo.stored(profiles[index]?.id ?? '')?.email).toBe(`${externalId}.3@example.com`);
    }
    // Far more receives than the five that used to send a change to the dead-letter queue, in all.
    expect(invocations).toBeGreaterThan(5);
  });
});

describe('processQueuedBatch hands failures back', () => {
  const change = (externalId = '1001') =>
    aChange({ externalId, email: `${externalId}.new@example.com`, phoneNumber: undefined });

  it('parks a permanent failure at once, with its reason, and hands nothing back', async () => {
    const w = worker();
    w.klaviyo.seed({ external_id: '1001', email: 'old@example.com' });
    w.deps.klaviyoFor = async () => ({
      ...w.klaviyo,
      updateProfile: () => Promise.reject(klaviyoError(400, 'invalid', { method: 'PATCH' })),
    });
    const { failed } = await processQueuedBatch([queued(change(), 1, w.now())], w.deps);
    expect(failed).toEqual([]);
    expect(w.handedBack).toEqual([]);
    expect(w.letters.map((letter) => letter.reason)).toEqual(['klaviyo_invalid']);
  });

  it('hands a transient failure back for longer each time, and its group after it', async () => {
    const w = worker(Number.POSITIVE_INFINITY);
    const first = change();
    const second = { ...change(), sourceEventId: 'second', occurredAt: '2026-05-01T12:05:00.000Z' };
    for (const attempt of [1, 2, 3, 7]) {
      w.handedBack.length = 0;
      const records = [queued(first, attempt, w.now()), queued(second, attempt, w.now())];
      const { failed } = await processQueuedBatch(records, w.deps);
      expect(failed.map((record) => record.id)).toEqual([first.sourceEventId, 'second']);
      const delay = Math.min(900, 30 * 2 ** (attempt - 1));
      expect(w.handedBack.map((h) => h.delaySeconds)).toEqual([delay, delay]);
    }
    expect(w.letters).toEqual([]);
  });

  it('hands a change back at once when the invocation has no time left', async () => {
    const w = worker();
    const { failed } = await processQueuedBatch([queued(change(), 3, w.now())], w.deps, {
      hasTimeForAnother: () => false,
    });
    expect(failed).toHaveLength(1);
    expect(w.handedBack.map((h) => h.delaySeconds)).toEqual([0]);
  });

  it('parks a change still failing after MAX_CHANGE_AGE_HOURS as retries_exhausted, its group then at once', async () => {
    const w = worker(Number.POSITIVE_INFINITY);
    const queuedAt = w.now() - 73 * HOUR_MS;
    const first = change();
    const second = { ...change(), sourceEventId: 'second', occurredAt: '2026-05-01T12:05:00.000Z' };
    const { failed } = await processQueuedBatch(
      [queued(first, 290, queuedAt), queued(second, 290, queuedAt)],
      w.deps,
    );
    expect(failed.map((record) => record.id)).toEqual(['second']);
    expect(w.handedBack.map((h) => h.delaySeconds)).toEqual([0]);
    expect(w.letters).toMatchObject([
      {
        reason: 'retries_exhausted',
        sourceEventId: first.sourceEventId,
        change: { externalId: first.externalId, email: first.email },
        context: {
          attempts: 290,
          lastReason: 'klaviyo_service_unavailable',
          queuedAt: new Date(queuedAt).toISOString(),
        },
      },
    ]);
  });

  it('parks a Shopify customer merge still failing after MAX_CHANGE_AGE_HOURS the same way, with its reason', async () => {
    const w = worker(Number.POSITIVE_INFINITY);
    const queuedAt = w.now() - 73 * HOUR_MS;
    const merge = aCustomerMerge();
    const record: QueuedRecord = {
      id: 'merge-message',
      groupId: messageGroupOf(merge),
      body: serializeQueuedChange(merge),
      attempt: 290,
      receiptHandle: 'handle-merge',
      sentAt: queuedAt,
    };
    expect((await processQueuedBatch([record], w.deps)).failed).toEqual([]);
    expect(w.letters).toMatchObject([
      {
        reason: 'retries_exhausted',
        detail: expect.stringContaining('still failing after 290 deliveries'),
        externalId: merge.deletedExternalId,
        merge,
        context: { attempts: 290, lastReason: 'klaviyo_service_unavailable' },
      },
    ]);
  });

  it('acknowledges a redelivered change that was decided already, without deciding it again', async () => {
    const w = worker();
    w.klaviyo.seed({ external_id: '1001', email: 'old@example.com' });
    const once = change();
    expect((await processQueuedBatch([queued(once, 1, w.now())], w.deps)).failed).toEqual([]);
    // The invocation died before the queue heard: the same message comes back.
    w.deps.klaviyoFor = () =>
      Promise.reject(new TransientError('unexpected', 'Klaviyo must not be asked again'));
    expect((await processQueuedBatch([queued(once, 2, w.now())], w.deps)).failed).toEqual([]);
    const decisions = await w.state.history('acme', '1001');
    expect(decisions.map((entry) => entry.outcome)).toEqual(['applied']);
  });
});
