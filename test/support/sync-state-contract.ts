import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type {
  AuditEntry,
  AuditLog,
  CustomerRecords,
  ErasureRecord,
  SyncStateStore,
} from '../../lib/ports.js';
import { anAppliedChange, recordedDigestsOf, sealedFor } from './factories.js';

/** The three faces of one state store: the staleness guard's state, the audit log, the compliance records. */
export interface SyncStateStores {
  state: SyncStateStore;
  audit: AuditLog;
  records: CustomerRecords;
}

const FIRST = '2026-05-01T12:00:00.000Z';
const LATER = '2026-05-01T13:00:00.000Z';
const FUTURE = '2100-01-01T00:00:00.000Z';

/** A tenant of its own for each test: stores kept between tests (dynalite) never mix. */
const aTenant = () => `contract-${randomUUID().slice(0, 8)}`;

const appliedChange = anAppliedChange;

const anAuditEntry = (tenant: string, externalId: string, decidedAt: string, sourceEventId = decidedAt) =>
  ({
    tenant,
    externalId,
    sourceEventId,
    outcome: 'applied',
    plan: 'patch',
    profileIds: ['01P'],
    occurredAt: FIRST,
    decidedAt,
  }) satisfies AuditEntry;

const anErasure = (tenant: string, overrides: Partial<ErasureRecord> = {}): ErasureRecord => ({
  tenant,
  scope: 'customer',
  subject: 'subject-1',
  keyId: 'k1',
  source: 'cli',
  sourceEventId: 'erase-1',
  requestedAt: FIRST,
  erasedAt: FIRST,
  counts: { stateItems: 1, auditItems: 0, letters: 0, klaviyoDeletions: 0 },
  ...overrides,
});

/**
 * What every sync state store does, the DynamoDB adapter (production) and the one in memory (CLI
 * runs without a table, tests) alike: run against each so the two cannot drift apart.
 */
export function describeSyncStateContract(name: string, makeStores: () => SyncStateStores): void {
  describe(`${name}: the customer's state`, () => {
    it('is empty for a customer never seen', async () => {
      const { state, records } = makeStores();
      const tenant = aTenant();
      expect(await state.getState(tenant, 'nobody')).toEqual({});
      expect(await records.readCustomer(tenant, 'nobody')).toEqual({ state: undefined, audit: [] });
    });

    it('records an applied change: the watermark, the profile and its digests; a redelivery keeps one record', async () => {
      const { state } = makeStores();
      const tenant = aTenant();
      const change = appliedChange(tenant, 'c1');
      expect(await state.recordApplied(change)).toBe(true);
      expect(await state.recordApplied(change)).toBe(true);
      expect(await state.getState(tenant, 'c1')).toEqual({
        lastAppliedAt: FIRST,
        profileId: '01P',
        digests: recordedDigestsOf({ email: 'c1@example.com', phone_number: null }),
      });
    });

    it('refuses an older change (the conditional watermark) and keeps the newer record', async () => {
      const { state } = makeStores();
      const tenant = aTenant();
      await state.recordApplied(appliedChange(tenant, 'c1', { occurredAt: LATER, profileId: '01NEW' }));
      expect(await state.recordApplied(appliedChange(tenant, 'c1', { profileId: '01OLD' }))).toBe(false);
      expect(await state.getState(tenant, 'c1')).toMatchObject({ lastAppliedAt: LATER, profileId: '01NEW' });
    });

    it('records a change with an unsigned time without moving the watermark', async () => {
      const { state } = makeStores();
      const tenant = aTenant();
      await state.recordApplied(appliedChange(tenant, 'c1'));
      const unsigned = appliedChange(tenant, 'c1', {
        occurredAt: FUTURE,
        occurredAtUnsigned: true,
        profileId: '01U',
      });
      expect(await state.recordApplied(unsigned)).toBe(true);
      expect(await state.getState(tenant, 'c1')).toMatchObject({ lastAppliedAt: FIRST, profileId: '01U' });
      // A later signed change is not stale against the unsigned one.
      expect(await state.recordApplied(appliedChange(tenant, 'c1', { occurredAt: LATER }))).toBe(true);
      expect(await state.getState(tenant, 'c1')).toMatchObject({ lastAppliedAt: LATER, profileId: '01P' });
      // An unsigned time older than the watermark is stale like any.
      const stale = appliedChange(tenant, 'c1', { occurredAtUnsigned: true });
      expect(await state.recordApplied(stale)).toBe(false);
    });

    it('keeps no watermark for a first change with an unsigned time', async () => {
      const { state } = makeStores();
      const tenant = aTenant();
      await state.recordApplied(appliedChange(tenant, 'c1', { occurredAtUnsigned: true }));
      expect(await state.getState(tenant, 'c1')).toEqual({
        profileId: '01P',
        digests: recordedDigestsOf({ email: 'c1@example.com', phone_number: null }),
      });
    });

    it('forgets the profile and digests when a change names no profile', async () => {
      const { state } = makeStores();
      const tenant = aTenant();
      await state.recordApplied(appliedChange(tenant, 'c1'));
      await state.recordApplied(appliedChange(tenant, 'c1', { occurredAt: LATER, profileId: undefined }));
      expect(await state.getState(tenant, 'c1')).toEqual({ lastAppliedAt: LATER });
    });

    it('keeps a pending change as recorded beside the record, and drops it when a change is applied', async () => {
      const { state } = makeStores();
      const tenant = aTenant();
      await state.recordApplied(appliedChange(tenant, 'c1'));
      const pending = {
        sealedIdentifiers: sealedFor('c1', { email: 'wanted@example.com' }, tenant),
        occurredAt: LATER,
        occurredAtUnsigned: true,
        sourceEventId: 'blocked',
        conflicts: 2,
      };
      await state.recordPending(tenant, 'c1', pending);
      expect(await state.getState(tenant, 'c1')).toMatchObject({
        lastAppliedAt: FIRST,
        profileId: '01P',
        pending,
      });
      await state.recordPending(tenant, 'new', pending);
      expect(await state.getState(tenant, 'new')).toEqual({ pending });

      await state.recordApplied(appliedChange(tenant, 'c1', { occurredAt: LATER }));
      expect((await state.getState(tenant, 'c1')).pending).toBeUndefined();
    });

    it('marks a merged customer, forgets its profile and pending change, and keeps the mark through later writes', async () => {
      const { state } = makeStores();
      const tenant = aTenant();
      await state.recordApplied(appliedChange(tenant, 'c1'));
      await state.recordPending(tenant, 'c1', { occurredAt: LATER, sourceEventId: 'blocked' });
      await state.recordMerged({ tenant, externalId: 'c1', intoExternalId: 'c2', mergedAt: LATER });
      expect(await state.getState(tenant, 'c1')).toEqual({
        lastAppliedAt: FIRST,
        mergedInto: 'c2',
        mergedAt: LATER,
      });
      await state.recordApplied(appliedChange(tenant, 'c1', { occurredAt: LATER }));
      expect(await state.getState(tenant, 'c1')).toMatchObject({ mergedInto: 'c2', mergedAt: LATER });
    });

    it("forgets a customer's profile and keeps its watermark; creates nothing for a customer never seen", async () => {
      const { state, records } = makeStores();
      const tenant = aTenant();
      await state.recordApplied(appliedChange(tenant, 'c1'));
      await state.forgetProfile(tenant, 'c1');
      expect(await state.getState(tenant, 'c1')).toEqual({ lastAppliedAt: FIRST });
      await state.forgetProfile(tenant, 'nobody');
      expect(await state.getState(tenant, 'nobody')).toEqual({});
      expect((await records.readCustomer(tenant, 'nobody')).state).toBeUndefined();
    });
    it('writes a change onlyIfHeld onto an item that exists, never makes one (an erased holder stays erased)', async () => {
      const { state, records } = makeStores();
      const tenant = aTenant();
      expect(await state.recordApplied({ ...appliedChange(tenant, 'gone'), onlyIfHeld: true })).toBe(false);
      expect((await records.readCustomer(tenant, 'gone')).state).toBeUndefined();
      await state.recordApplied(appliedChange(tenant, 'c1'));
      const later = {
        ...appliedChange(tenant, 'c1', { occurredAt: LATER, profileId: '01NEW' }),
        onlyIfHeld: true,
      } as const;
      expect(await state.recordApplied(later)).toBe(true);
      expect(await state.getState(tenant, 'c1')).toMatchObject({ lastAppliedAt: LATER, profileId: '01NEW' });
    });
  });

  describe(`${name}: the audit log`, () => {
    it("gives a customer's history newest first, to the limit, and nobody else's", async () => {
      const { audit } = makeStores();
      const tenant = aTenant();
      const times = ['2026-05-01T12:00:02.000Z', '2026-05-01T12:00:01.000Z', '2026-05-01T12:00:03.000Z'];
      for (const time of times) await audit.record(anAuditEntry(tenant, 'c1', time));
      await audit.record(anAuditEntry(tenant, 'c2', '2026-05-01T12:00:09.000Z'));
      const decided = async (limit?: number) =>
        (await audit.history(tenant, 'c1', limit)).map((entry) => entry.decidedAt);
      expect(await decided()).toEqual([times[2], times[0], times[1]]);
      expect(await decided(2)).toEqual([times[2], times[0]]);
      expect(await audit.history(tenant, 'nobody')).toEqual([]);
    });

    it('shows decisions that changed nothing as the last of them with their count, among the entries', async () => {
      const { state, audit } = makeStores();
      const tenant = aTenant();
      await audit.record(anAuditEntry(tenant, 'c1', '2026-05-01T12:00:00.000Z', 'applied-1'));
      await audit.record(anAuditEntry(tenant, 'c1', '2026-05-01T14:00:00.000Z', 'applied-2'));
      for (const [event, decidedAt] of [
        ['unchanged-1', '2026-05-01T12:30:00.000Z'],
        ['unchanged-2', '2026-05-01T13:00:00.000Z'],
      ]) {
        const change = appliedChange(tenant, 'c1', { sourceEventId: event, unchangedDecidedAt: decidedAt });
        expect(await state.recordApplied(change)).toBe(true);
      }
      expect(await audit.history(tenant, 'c1')).toEqual([
        expect.objectContaining({ sourceEventId: 'applied-2' }),
        expect.objectContaining({
          sourceEventId: 'unchanged-2',
          outcome: 'unchanged',
          decidedAt: '2026-05-01T13:00:00.000Z',
          profileIds: ['01P'],
          reason: 'unchanged: the last of 2 such decisions',
        }),
        expect.objectContaining({ sourceEventId: 'applied-1' }),
      ]);
    });
  });

  describe(`${name}: the compliance records`, () => {
    it("reads a customer's state and audit entries, oldest first", async () => {
      const { state, audit, records } = makeStores();
      const tenant = aTenant();
      await state.recordApplied(appliedChange(tenant, 'c1'));
      await audit.record(anAuditEntry(tenant, 'c1', '2026-05-01T12:00:02.000Z'));
      await audit.record(anAuditEntry(tenant, 'c1', '2026-05-01T12:00:01.000Z'));
      const held = await records.readCustomer(tenant, 'c1');
      expect(held.state).toBeDefined();
      expect(JSON.stringify(held.state)).not.toContain('c1@example.com');
      expect(held.audit.map((entry) => entry.decidedAt)).toEqual([
        '2026-05-01T12:00:01.000Z',
        '2026-05-01T12:00:02.000Z',
      ]);
    });

    it("erases one customer's state, audit entries and unchanged decisions, and nobody else's", async () => {
      const { state, audit, records } = makeStores();
      const tenant = aTenant();
      for (const customer of ['c1', 'c2']) {
        await state.recordApplied(appliedChange(tenant, customer, { unchangedDecidedAt: LATER }));
        await audit.record(anAuditEntry(tenant, customer, '2026-05-01T12:00:01.000Z'));
        await audit.record(anAuditEntry(tenant, customer, '2026-05-01T12:00:02.000Z'));
      }
      expect(await records.eraseCustomer(tenant, 'c1')).toEqual({ stateItems: 1, auditItems: 2 });
      expect(await state.getState(tenant, 'c1')).toEqual({});
      expect(await audit.history(tenant, 'c1')).toEqual([]);
      expect(await records.readCustomer(tenant, 'c1')).toEqual({ state: undefined, audit: [] });
      expect(await audit.history(tenant, 'c2')).toHaveLength(3);
      expect(await records.eraseCustomer(tenant, 'nobody')).toEqual({ stateItems: 0, auditItems: 0 });
    });

    it("erases a tenant's customers and their erasure markers, keeps its shop records and other tenants'", async () => {
      const { state, audit, records } = makeStores();
      const [tenant, other] = [aTenant(), aTenant()];
      for (const owner of [tenant, other]) {
        await state.recordApplied(appliedChange(owner, 'c1', { unchangedDecidedAt: LATER }));
        await state.recordPending(owner, 'c2', { occurredAt: LATER, sourceEventId: 'blocked' });
        await audit.record(anAuditEntry(owner, 'c1', '2026-05-01T12:00:01.000Z'));
        await records.recordErasure(anErasure(owner));
      }
      await records.recordErasure(
        anErasure(tenant, { scope: 'shop', subject: undefined, sourceEventId: 'shop-1' }),
      );

      expect(await records.eraseTenant(tenant)).toEqual({ stateItems: 2, auditItems: 1 });
      expect(await state.getState(tenant, 'c1')).toEqual({});
      expect(await state.getState(tenant, 'c2')).toEqual({});
      expect(await audit.history(tenant, 'c1')).toEqual([]);
      expect(await records.isErased(tenant, 'subject-1')).toBe(false);

      expect(await state.getState(other, 'c1')).toMatchObject({ profileId: '01P' });
      expect(await audit.history(other, 'c1')).toHaveLength(2);
      expect(await records.isErased(other, 'subject-1')).toBe(true);
    });

    it('records a customer erasure by its subject, again without harm; a shop erasure marks no customer', async () => {
      const { records } = makeStores();
      const [tenant, other] = [aTenant(), aTenant()];
      expect(await records.isErased(tenant, 'subject-1')).toBe(false);
      await records.recordErasure(anErasure(tenant));
      await records.recordErasure(anErasure(tenant, { sourceEventId: 'erase-again' }));
      await records.recordErasure(
        anErasure(tenant, { scope: 'shop', subject: undefined, sourceEventId: 'shop-1' }),
      );
      expect(await records.isErased(tenant, 'subject-1')).toBe(true);
      expect(await records.isErased(tenant, 'subject-2')).toBe(false);
      expect(await records.isErased(other, 'subject-1')).toBe(false);
    });
  });
}
