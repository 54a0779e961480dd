import type { AppliedChange, AuditEntry } from '../ports.js';

/**
 * The last decision about a customer that changed nothing, as the state keeps it in place of an
 * audit entry of its own (AppliedChange.unchangedDecidedAt), and how many there were in all.
 */
export interface UnchangedDecisions {
  last: { sourceEventId: string; occurredAt: string; profileId?: string; decidedAt: string };
  count: number;
}

export const lastUnchangedOf = (change: AppliedChange, decidedAt: string): UnchangedDecisions['last'] => ({
  sourceEventId: change.sourceEventId,
  occurredAt: change.occurredAt,
  ...(change.profileId && { profileId: change.profileId }),
  decidedAt,
});

/** Newest first, as an audit log's history: the audit entries with the last unchanged decision among them. */
export function historyWithUnchanged(
  tenant: string,
  externalId: string,
  entries: AuditEntry[],
  unchanged: UnchangedDecisions | undefined,
  limit: number,
): AuditEntry[] {
  if (!unchanged) return entries.slice(0, limit);
  const { last, count } = unchanged;
  const entry: AuditEntry = {
    tenant,
    externalId,
    sourceEventId: last.sourceEventId,
    outcome: 'unchanged',
    plan: 'skip',
    reason: count === 1 ? 'unchanged' : `unchanged: the last of ${count} such decisions`,
    profileIds: last.profileId ? [last.profileId] : [],
    occurredAt: last.occurredAt,
    decidedAt: last.decidedAt,
  };
  const sortKey = (e: AuditEntry) => `${e.decidedAt}#${e.sourceEventId}`;
  const newer = entries.filter((e) => sortKey(e) > sortKey(entry));
  return [...newer, entry, ...entries.slice(newer.length)].slice(0, limit);
}
