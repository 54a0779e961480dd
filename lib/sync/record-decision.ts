import type { Identifiers } from '../identity-change.js';
import type { AuditedIdentifiers, RecordedDigests } from '../ports.js';
import { auditedValue, digestIdentifiers, type IdentifierKey } from '../privacy/identifier-digest.js';
import type { KeyedContext, SyncContext, SyncOutcome, SyncResult } from './context.js';
import { type FoundProfile, identifiersOf } from './identifiers.js';
import type { SyncPlan } from './plan.js';

/**
 * What a decision leaves behind: the customer's record (for the staleness guard, and the profile
 * its next change needs no lookup for) and the audit trail, identifiers masked and digested.
 */

/** A profile as a sync knows it: as Klaviyo showed it, or as our record holds it (digests only). */
export type KnownProfile = Pick<FoundProfile, 'profile' | 'recorded'>;

/**
 * Marks the change applied for the staleness guard, with the profile as Klaviyo last showed it
 * (`after`), so the customer's next change needs no lookup; then audits the result.
 */
export async function recordApplied(
  ctx: KeyedContext,
  result: SyncResult,
  { before, after }: { before?: KnownProfile; after?: KnownProfile } = {},
): Promise<SyncResult> {
  const { change } = ctx;
  // A decision that changed nothing is kept with the state (AppliedChange.unchangedDecidedAt):
  // about half of a store's deliveries, each spared an audit write.
  const unchanged = result.outcome === 'unchanged' && ctx.audit !== undefined;
  const recorded = await ctx.state.recordApplied({
    tenant: change.tenant,
    externalId: change.externalId,
    occurredAt: change.occurredAt,
    ...(change.occurredAtUnsigned && { occurredAtUnsigned: true }),
    sourceEventId: change.sourceEventId,
    profileId: result.profileId,
    ...(after && after.profile.id === result.profileId && { digests: digestsOf(ctx.identifierKey, after) }),
    ...(unchanged && { unchangedDecidedAt: ctx.clock().toISOString() }),
  });
  if (recorded && unchanged) return result;
  // FIFO groups make this rare: only a replay racing a live change can lose the race.
  const final = recorded
    ? result
    : { ...result, reason: 'a newer change was recorded while this one was applied' };
  await audit(ctx, final, before);
  return final;
}

/** What the record keeps of a profile: digests of its identifiers (a record's own, as they are). */
export function digestsOf(key: IdentifierKey, { profile, recorded }: KnownProfile): RecordedDigests {
  if (recorded?.keyId === key.id) return recorded;
  return { keyId: key.id, ...digestIdentifiers(key, identifiersOf(profile)) };
}

/** Identifiers in the audit trail's form: email and phone masked and digested (AuditedValue). */
export function auditedIdentifiers(key: IdentifierKey, identifiers: Identifiers): AuditedIdentifiers {
  const audited: AuditedIdentifiers = {};
  for (const [field, value] of Object.entries(identifiers)) {
    const kept = auditedValue(key, field, value);
    if (kept !== undefined) audited[field] = kept;
  }
  return audited;
}

/** The profile before, as the audit keeps it; from the record, only the digests are known. */
function auditedBefore(key: IdentifierKey, { profile, recorded }: KnownProfile): AuditedIdentifiers {
  if (!recorded) {
    return auditedIdentifiers(key, {
      email: profile.email,
      phone_number: profile.phone_number,
      external_id: profile.external_id,
    });
  }
  const digestOnly = (digest: string | null) => (digest === null ? null : { digest });
  return {
    email: digestOnly(recorded.email),
    phone_number: digestOnly(recorded.phone_number),
    external_id: profile.external_id,
  };
}

/**
 * One decision into the audit log, with the identifiers before and after: masked and digested,
 * never as they are (and left out without the tenant's key, which only undecided changes lack).
 */
export async function audit(
  { change, audit, clock, ...keyed }: SyncContext & Partial<Pick<KeyedContext, 'identifierKey'>>,
  decision: Pick<SyncResult, 'plan' | 'reason' | 'profileId'> & { outcome: SyncOutcome | 'parked' },
  before?: KnownProfile,
) {
  if (!audit) return;
  const { plan } = decision;
  const key = keyed.identifierKey;
  await audit.record({
    tenant: change.tenant,
    externalId: change.externalId,
    sourceEventId: change.sourceEventId,
    outcome: decision.outcome,
    plan: plan.action,
    ...(decision.reason ? { reason: decision.reason } : {}),
    // A created profile's id is known only from the result: the plan had none to name.
    profileIds: [profileOf(plan) ?? decision.profileId, otherProfileOf(plan)].filter((id): id is string =>
      Boolean(id),
    ),
    ...(key && before ? { before: auditedBefore(key, before) } : {}),
    ...(key && 'attributes' in plan ? { after: auditedIdentifiers(key, plan.attributes) } : {}),
    ...(key && { keyId: key.id }),
    occurredAt: change.occurredAt,
    decidedAt: clock().toISOString(),
  });
}

/** The customer's own profile the plan acts on, if it names one. */
export const profileOf = (plan: SyncPlan) => ('profileId' in plan ? plan.profileId : undefined);
const otherProfileOf = (plan: SyncPlan) =>
  'holderId' in plan ? plan.holderId : 'sourceId' in plan ? plan.sourceId : undefined;
