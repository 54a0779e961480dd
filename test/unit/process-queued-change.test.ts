import { describe, expect, it } from 'vitest';
import { createMemorySyncState } from '../../lib/adapters/memory-sync-state.js';
import type { TenantPolicies } from '../../lib/config.js';
import type { IdentityChange } from '../../lib/identity-change.js';
import { KlaviyoApiError } from '../../lib/klaviyo/errors.js';
import { defaultPolicies } from '../../lib/policies.js';
import type { DeadLetter } from '../../lib/ports.js';
import { processQueuedChange, type WorkerDependencies } from '../../lib/sync/handle-message.js';
import {
  aChange,
  aDeadLetterRecorder,
  aRecordingTelemetry,
  testIdentifierKeyFor,
} from '../support/factories.js';
import { createMemoryKlaviyo, klaviyoError } from '../support/memory-klaviyo.js';

/** The worker's handling of one queued message, with Klaviyo, state and queues in memory. */
const NOW = '2026-05-01T12:00:09.000Z';

function worker(policies: Partial<TenantPolicies> = {}) {
  const klaviyo = createMemoryKlaviyo({ mergeAfterGets: 1 });
  const store = createMemorySyncState();
  const deadLetters = aDeadLetterRecorder();
  const { telemetry, logs, counts } = aRecordingTelemetry();
  const keysRead: { tenant: string; fresh: boolean }[] = [];
  const deps: WorkerDependencies = {
    state: store,
    audit: store,
    policiesFor: () => ({ ...defaultPolicies, dryRun: false, ...policies }),
    identifierKeyFor: testIdentifierKeyFor,
    klaviyoFor: async (tenant, options) => {
      keysRead.push({ tenant, fresh: options?.fresh ?? false });
      return klaviyo;
    },
    deadLetters,
    telemetry,
    clock: () => new Date(NOW),
  };
  const process = (message: IdentityChange | string, attempt = 1) =>
    processQueuedChange(typeof message === 'string' ? message : JSON.stringify(message), deps, { attempt });
  return { klaviyo, store, letters: deadLetters.letters, logs, counts, keysRead, process };
}

const countsOf = (counts: Map<string, number>) => Object.fromEntries(counts);

describe('processQueuedChange', () => {
  it('applies a change, counts and logs its outcome, and audits it', async () => {
    const { klaviyo, store, counts, logs, process } = worker();
    const ours = klaviyo.seed({ external_id: '1001', email: 'old@example.com' });
    const change = aChange();
    const result = await process(change);
    expect(result).toMatchObject({ outcome: 'applied', profileId: ours.id });
    expect(countsOf(counts)).toEqual({ ChangeApplied: 1 });
    expect(logs).toContainEqual({
      level: 'info',
      message: 'Change applied',
      attributes: expect.objectContaining({
        tenant: 'acme',
        externalId: '1001',
        sourceEventId: change.sourceEventId,
        plan: 'patch',
        fields: ['email', 'phone_number'],
      }),
    });
    expect(await store.history('acme', '1001')).toMatchObject([
      { outcome: 'applied', sourceEventId: change.sourceEventId },
    ]);
  });

  it.each([
    ['created', 'ProfileCreated', () => {}],
    ['unchanged', 'ChangeUnchanged', (k) => k.seed({ external_id: '1001', email: 'new@example.com' })],
    ['bound', 'ProfileBound', (k) => k.seed({ email: 'new@example.com' })],
    [
      'merged',
      'ProfileMerged',
      (k) => {
        k.seed({ external_id: '1001', email: 'old@example.com' });
        k.seed({ email: 'new@example.com' });
      },
    ],
  ] satisfies [string, string, (klaviyo: ReturnType<typeof createMemoryKlaviyo>) => void][])(
    'counts %s as %s',
    async (outcome, metric, seed) => {
      const { klaviyo, counts, process } = worker();
      seed(klaviyo);
      expect(await process(aChange({ phoneNumber: undefined }))).toMatchObject({ outcome });
      expect(countsOf(counts)).toEqual({ [metric]: 1 });
    },
  );

  it('counts a stale change as ChangeStale and a skipped one as ChangeSkipped', async () => {
    const { counts, process } = worker({ onMissingProfile: 'skip' });
    expect(await process(aChange({ occurredAt: '2026-05-01T12:00:00.000Z' }))).toMatchObject({
      outcome: 'skipped',
      reason: 'no_profile',
    });
    expect(await process(aChange({ occurredAt: '2026-05-01T11:00:00.000Z' }))).toMatchObject({
      outcome: 'stale',
    });
    expect(countsOf(counts)).toEqual({ ChangeSkipped: 1, ChangeStale: 1 });
  });

  it('in a dry run plans and counts ChangePlanned, writing nothing', async () => {
    const { klaviyo, store, counts, process } = worker({ dryRun: true });
    klaviyo.seed({ external_id: '1001', email: 'old@example.com' });
    expect(await process(aChange())).toMatchObject({ outcome: 'planned', plan: { action: 'patch' } });
    expect(countsOf(counts)).toEqual({ ChangePlanned: 1 });
    expect(klaviyo.callsOf('updateProfile')).toEqual([]);
    expect(await store.history('acme', '1001')).toEqual([]);
  });

  it('parks a change the policy will not apply, with its reason and the profiles involved', async () => {
    const { klaviyo, store, letters, counts, logs, process } = worker({ onDuplicateProfile: 'park' });
    const ours = klaviyo.seed({ external_id: '1001', email: 'old@example.com' });
    const duplicate = klaviyo.seed({ email: 'new@example.com' });
    const change = aChange({ phoneNumber: undefined });
    expect(await process(change)).toEqual({ outcome: 'parked', reason: 'duplicate_profile' });
    expect(letters).toEqual([
      {
        reason: 'duplicate_profile',
        detail: expect.stringContaining(duplicate.id),
        tenant: 'acme',
        source: 'shopify',
        sourceEventId: change.sourceEventId,
        externalId: change.externalId,
        change,
        context: { profileId: ours.id, holderId: duplicate.id, attempts: 1 },
        parkedAt: NOW,
      },
    ]);
    expect(countsOf(counts)).toEqual({ ChangeFailed: 1 });
    const logged = logs.find((line) => line.level === 'error');
    expect(logged?.attributes).toMatchObject({ reason: 'duplicate_profile' });
    expect(JSON.stringify(logged)).not.toContain('new@example.com');
    expect(await store.history('acme', '1001')).toMatchObject([
      { outcome: 'parked', reason: 'duplicate_profile' },
    ]);
  });

  it("retries a change blocked by another customer's identifier, then parks it on the last try", async () => {
    const { klaviyo, letters, counts, process } = worker();
    const ours = klaviyo.seed({ external_id: '1001', email: 'old@example.com' });
    const theirs = klaviyo.seed({ external_id: '2002', email: 'new@example.com' });
    const change = aChange({ phoneNumber: undefined });
    // Tries count the deliveries that met the conflict, whatever else came back in between.
    for (const delivery of [1, 5, 9]) {
      await expect(process(change, delivery)).rejects.toMatchObject({
        reason: 'identifier_held_by_other_customer',
      });
    }
    expect(letters).toEqual([]);
    expect(await process(change, 12)).toEqual({
      outcome: 'parked',
      reason: 'identifier_held_by_other_customer',
    });
    expect(letters[0]).toMatchObject({ context: { profileId: ours.id, holderId: theirs.id } });
    expect(countsOf(counts)).toEqual({ ChangeRetried: 3, ChangeFailed: 1 });
  });

  it("parks a Klaviyo 4xx with Klaviyo's code as the reason and its status, code and pointer", async () => {
    const { klaviyo, letters, process } = worker();
    klaviyo.seed({ external_id: '1001', email: 'old@example.com' });
    const invalid = new KlaviyoApiError(400, 'PATCH', '/api/profiles/x', [
      { code: 'invalid', detail: 'Invalid email.', source: { pointer: '/data/attributes/email' } },
    ]);
    klaviyo.failNext('updateProfile', invalid);
    expect(await process(aChange())).toEqual({ outcome: 'parked', reason: 'klaviyo_invalid' });
    expect(letters[0]).toMatchObject({
      reason: 'klaviyo_invalid',
      context: { status: 400, code: 'invalid', pointer: '/data/attributes/email' },
    });
  });

  it('rethrows transient failures (Klaviyo 5xx, unknown errors) so the queue retries them', async () => {
    const { klaviyo, letters, counts, process } = worker();
    klaviyo.seed({ external_id: '1001', email: 'old@example.com' });
    klaviyo.failNext('updateProfile', klaviyoError(503, 'server_error', { method: 'PATCH' }));
    await expect(process(aChange())).rejects.toMatchObject({ status: 503 });
    klaviyo.failNext('findProfiles', new TypeError('a bug'));
    await expect(process(aChange())).rejects.toThrow('a bug');
    expect(letters).toEqual([]);
    expect(countsOf(counts)).toEqual({ ChangeRetried: 2 });
  });

  it('reads the tenant secret afresh and tries once more when Klaviyo answers 401', async () => {
    const { klaviyo, keysRead, logs, process } = worker();
    klaviyo.seed({ external_id: '1001', email: 'old@example.com' });
    klaviyo.failNext('findProfiles', klaviyoError(401, 'not_authenticated'));
    expect(await process(aChange())).toMatchObject({ outcome: 'applied' });
    expect(keysRead).toEqual([
      { tenant: 'acme', fresh: false },
      { tenant: 'acme', fresh: true },
    ]);
    expect(logs.map((line) => line.level)).toContain('warn');
  });

  it('parks the change when the fresh key is refused too', async () => {
    const { klaviyo, letters, keysRead, process } = worker();
    klaviyo.failNext('findProfiles', klaviyoError(401, 'not_authenticated'), 2);
    expect(await process(aChange())).toEqual({ outcome: 'parked', reason: 'klaviyo_not_authenticated' });
    expect(keysRead).toHaveLength(2);
    expect(letters[0]).toMatchObject({ context: { status: 401 } });
  });

  it.each([
    ['not JSON', 'not json'],
    ['JSON but no identity change', JSON.stringify({ tenant: 'acme' })],
  ])('parks a message that is %s as invalid_message, with the raw payload', async (_what, body) => {
    const { letters, counts, process } = worker();
    expect(await process(body)).toEqual({ outcome: 'parked', reason: 'invalid_message' });
    expect(letters).toEqual([
      expect.objectContaining({
        reason: 'invalid_message',
        tenant: undefined,
        source: 'unknown',
        payload: body,
        parkedAt: NOW,
      }),
    ]);
    expect(countsOf(counts)).toEqual({ ChangeFailed: 1 });
  });

  it("replays a parked letter moved back by redrive: applies the letter's change as it was", async () => {
    const { klaviyo, process } = worker();
    const ours = klaviyo.seed({ external_id: '1001', email: 'old@example.com' });
    const change = aChange({ phoneNumber: undefined });
    const letter: DeadLetter = {
      reason: 'identifier_held_by_other_customer',
      detail: 'parked earlier',
      tenant: change.tenant,
      source: change.source,
      sourceEventId: change.sourceEventId,
      change,
      context: { profileId: ours.id, holderId: '01GONE' },
      parkedAt: NOW,
    };
    expect(await process(JSON.stringify(letter))).toMatchObject({ outcome: 'applied', profileId: ours.id });
    expect(klaviyo.stored(ours.id)?.email).toBe('new@example.com');
  });
});
