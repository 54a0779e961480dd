import type {
  AuditEntry,
  AuditLog,
  CustomerRecords,
  CustomerState,
  ErasureRecord,
  SyncStateStore,
} from '../ports.js';
import { isStale, watermarkAfter } from '../sync/staleness.js';
import {
  historyWithUnchanged,
  lastUnchangedOf,
  type UnchangedDecisions,
} from '../sync/unchanged-decisions.js';
import { auditSortKeyOf } from './state-table.js';

/** A customer's audit entries in the table's order (its sort key), oldest first. */
const inDecidedOrder = (entries: AuditEntry[]) =>
  [...entries].sort((a, b) => compareCodeUnits(auditSortKeyOf(a), auditSortKeyOf(b)));
const compareCodeUnits = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * The sync state and audit log in memory, with the DynamoDB adapter's rules: a change older than
 * the one recorded is refused, applying clears the pending change, history is newest first. For
 * one-off CLI runs without SYNC_STATE_TABLE, and for tests. Both pass one contract
 * (test/support/sync-state-contract.ts).
 */
export function createMemorySyncState(): SyncStateStore &
  AuditLog &
  CustomerRecords & { erasures: ErasureRecord[] } {
  const states = new Map<string, CustomerState>();
  const audits = new Map<string, AuditEntry[]>();
  const erasures: ErasureRecord[] = [];
  const ofTenant = (tenant: string) => (key: string) => (JSON.parse(key) as string[])[0] === tenant;
  const unchanged = new Map<string, UnchangedDecisions>();
  const keyOf = (tenant: string, externalId: string) => JSON.stringify([tenant, externalId]);

  return {
    erasures,

    async readCustomer(tenant, externalId) {
      const key = keyOf(tenant, externalId);
      const state = states.get(key);
      return { state: state && { ...state }, audit: inDecidedOrder(audits.get(key) ?? []) };
    },

    async eraseCustomer(tenant, externalId) {
      const key = keyOf(tenant, externalId);
      const erased = { stateItems: states.delete(key) ? 1 : 0, auditItems: audits.get(key)?.length ?? 0 };
      audits.delete(key);
      // Kept on the state item in DynamoDB: gone with it.
      unchanged.delete(key);
      return erased;
    },

    async eraseTenant(tenant) {
      const stateKeys = [...states.keys()].filter(ofTenant(tenant));
      const auditKeys = [...audits.keys()].filter(ofTenant(tenant));
      const auditItems = auditKeys.reduce((sum, key) => sum + (audits.get(key)?.length ?? 0), 0);
      for (const key of stateKeys) {
        states.delete(key);
        unchanged.delete(key);
      }
      for (const key of auditKeys) audits.delete(key);
      const markers = erasures.filter((record) => record.tenant === tenant && record.scope === 'customer');
      for (const marker of markers) erasures.splice(erasures.indexOf(marker), 1);
      return { stateItems: stateKeys.length, auditItems };
    },

    async recordErasure(record) {
      const same = erasures.findIndex(
        (held) =>
          held.tenant === record.tenant &&
          held.scope === record.scope &&
          (record.scope === 'customer'
            ? held.subject === record.subject
            : held.sourceEventId === record.sourceEventId),
      );
      if (same >= 0) erasures.splice(same, 1);
      erasures.push(structuredClone(record));
    },

    async isErased(tenant, subject) {
      return erasures.some((record) => record.tenant === tenant && record.subject === subject);
    },

    async getState(tenant, externalId) {
      return { ...states.get(keyOf(tenant, externalId)) };
    },

    async recordApplied(change) {
      const key = keyOf(change.tenant, change.externalId);
      if (change.onlyIfHeld && !states.has(key)) return false;
      const { lastAppliedAt: last, mergedInto, mergedAt } = states.get(key) ?? {};
      if (isStale(change.occurredAt, last)) return false;
      const watermark = watermarkAfter(change, last);
      states.set(key, {
        ...(mergedInto && { mergedInto, mergedAt }),
        ...(watermark && { lastAppliedAt: watermark }),
        ...(change.profileId && { profileId: change.profileId }),
        ...(change.profileId && change.digests && { digests: change.digests }),
      });
      if (change.unchangedDecidedAt) {
        const last = lastUnchangedOf(change, change.unchangedDecidedAt);
        unchanged.set(key, { last, count: (unchanged.get(key)?.count ?? 0) + 1 });
      }
      return true;
    },

    async recordPending(tenant, externalId, pending) {
      const key = keyOf(tenant, externalId);
      states.set(key, { ...states.get(key), pending });
    },

    async recordMerged({ tenant, externalId, intoExternalId, mergedAt }) {
      const key = keyOf(tenant, externalId);
      const { lastAppliedAt } = states.get(key) ?? {};
      states.set(key, { ...(lastAppliedAt && { lastAppliedAt }), mergedInto: intoExternalId, mergedAt });
    },

    async forgetProfile(tenant, externalId) {
      const key = keyOf(tenant, externalId);
      const { profileId: _profileId, digests: _digests, ...rest } = states.get(key) ?? {};
      if (states.has(key)) states.set(key, rest);
    },

    async record(entry) {
      const key = keyOf(entry.tenant, entry.externalId);
      audits.set(key, [...(audits.get(key) ?? []), entry]);
    },

    async history(tenant, externalId, limit = 100) {
      const key = keyOf(tenant, externalId);
      const entries = inDecidedOrder(audits.get(key) ?? []).reverse();
      return historyWithUnchanged(tenant, externalId, entries, unchanged.get(key), limit);
    },
  };
}
