import { describe, expect, it } from 'vitest';
import { applyCommand, changesToLookUp } from '../../cli/commands/apply.js';
import type { ApplyTask } from '../../cli/rows.js';
import type { Session } from '../../cli/session.js';
import { createMemorySyncState } from '../../lib/adapters/memory-sync-state.js';
import { defaultPolicies } from '../../lib/policies.js';
import { aChange, recordedDigestsOf, TEST_IDENTIFIER_KEY } from '../support/factories.js';
import { createMemoryKlaviyo, type MemoryKlaviyo } from '../support/memory-klaviyo.js';

/** `apply`'s chunk of rows: which customers it looks up together, and what that costs. */
const aTask = (line: number, externalId: string, email = `${externalId}@example.com`): ApplyTask => ({
  line,
  externalId,
  change: aChange({
    tenant: 'acme',
    externalId,
    email,
    phoneNumber: undefined,
    sourceEventId: `cli:x:${line}`,
  }),
});

function aSession(klaviyo: MemoryKlaviyo): Session {
  const memory = createMemorySyncState();
  return {
    tenant: 'acme',
    target: { baseUrl: 'http://127.0.0.1:9', keyFingerprint: '000000000000', keySource: 'a test' },
    policies: { ...defaultPolicies, dryRun: false },
    klaviyo,
    identifierKey: TEST_IDENTIFIER_KEY,
    retries: { total: 0, throttled: 0 },
    pacing: 'not at all',
    state: memory,
    audit: memory,
    description: 'in memory',
    close: () => undefined,
  };
}

const recordOf = (externalId: string, occurredAt = '2026-04-01T00:00:00.000Z') => ({
  tenant: 'acme',
  externalId,
  occurredAt,
  sourceEventId: 'earlier',
  profileId: `01${externalId}`,
  digests: recordedDigestsOf({ email: `${externalId}@example.com`, phone_number: null }),
});

describe('changesToLookUp', () => {
  it("takes each customer's first row, unless the record names its profile or the row is stale", async () => {
    const { state } = aSession(createMemoryKlaviyo());
    await state.recordApplied(recordOf('known'));
    await state.recordApplied({
      ...recordOf('later'),
      profileId: undefined,
      occurredAt: '2026-06-01T00:00:00Z',
    });
    const tasks = [
      aTask(2, 'new'),
      aTask(3, 'known'),
      aTask(4, 'new', 'again@example.com'),
      aTask(5, 'later'),
    ];

    expect((await changesToLookUp(tasks, state, false)).map((change) => change.sourceEventId)).toEqual([
      'cli:x:2',
    ]);
  });

  it('takes every row of such customers in a dry run, which records nothing between them', async () => {
    const { state } = aSession(createMemoryKlaviyo());
    const tasks = [aTask(2, 'new'), aTask(3, 'new', 'again@example.com')];
    expect(await changesToLookUp(tasks, state, true)).toHaveLength(2);
  });
});

describe('apply: a chunk of rows', () => {
  it('finds 300 customers with no record in 3 queries per 100, then writes each changed row once', async () => {
    const klaviyo = createMemoryKlaviyo();
    const session = aSession(klaviyo);
    // A third have a profile with their external_id and an old email, two thirds are new.
    const tasks = Array.from({ length: 300 }, (_, n) => aTask(n + 2, `c${n}`));
    for (let n = 0; n < 300; n += 3) klaviyo.seed({ external_id: `c${n}`, email: `c${n}.old@example.com` });

    const lookups = await applyCommand.lookUp(tasks, session, false);
    const outcomes = [];
    for (const task of tasks) outcomes.push((await applyCommand.run(task, session, false, lookups)).outcome);

    expect(outcomes.filter((outcome) => outcome === 'applied')).toHaveLength(100);
    expect(outcomes.filter((outcome) => outcome === 'created')).toHaveLength(200);
    expect(klaviyo.callsOf('findProfilesAmong').map(([field]) => field)).toEqual([
      ...Array(3).fill('external_id'),
      ...Array(2).fill('email'),
    ]);
    expect(klaviyo.callsOf('findProfiles')).toEqual([]);
    expect(klaviyo.callsOf('updateProfile')).toHaveLength(100);
    expect(klaviyo.callsOf('importProfile')).toHaveLength(200);

    // The same rows again: each customer's record answers, and nothing differs.
    const again = tasks.map((task) => ({
      ...task,
      change: { ...task.change, occurredAt: '2026-05-02T00:00:00Z' },
    }));
    const calls = klaviyo.calls.length;
    const rerun = await applyCommand.lookUp(again, session, false);
    for (const task of again)
      expect((await applyCommand.run(task, session, false, rerun)).outcome).toBe('unchanged');
    expect(klaviyo.calls.length).toBe(calls);
  });

  it('looks rows up one by one when the chunk has no lookups (they failed)', async () => {
    const klaviyo = createMemoryKlaviyo();
    const session = aSession(klaviyo);
    expect((await applyCommand.run(aTask(2, 'c1'), session, false, undefined)).outcome).toBe('created');
    expect(klaviyo.callsOf('findProfiles').length).toBeGreaterThan(0);
    expect(klaviyo.callsOf('findProfilesAmong')).toEqual([]);
  });
});
