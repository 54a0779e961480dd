import { setTimeout as sleep } from 'node:timers/promises';
import { PermanentError, TransientError } from '../errors.js';
import type { IdentityChange } from '../identity-change.js';
import type { KlaviyoProfile, KlaviyoProfiles } from '../klaviyo/client.js';
import { KlaviyoApiError } from '../klaviyo/errors.js';
import type { AuditLog, Clock, SyncStateStore } from '../ports.js';
import {
  type Facts,
  type Holder,
  isStale,
  lookupOrder,
  type Policies,
  planChange,
  requestedIdentifiers,
  resolved,
  type SyncPlan,
} from './plan.js';

export type SyncOutcome =
  | 'applied'
  | 'bound'
  | 'created'
  | 'merged'
  | 'swapped'
  | 'unchanged'
  | 'stale'
  | 'skipped'
  | 'planned';

export interface SyncResult {
  outcome: SyncOutcome;
  plan: SyncPlan;
  profileId?: string;
  /** Which identifiers were written, for the log. */
  fields?: string[];
  reason?: string;
}

export interface SyncDependencies {
  state: SyncStateStore;
  /** Asked only when the change is not stale, so stale changes cost no secret or Klaviyo call. */
  klaviyo: () => Promise<KlaviyoProfiles>;
  policies: Policies;
  audit?: AuditLog;
  /** Look up and decide, but write nothing; the plan is the result. */
  dryRun?: boolean;
  /** How many times this change has been tried (SQS receive count), 1 at first. */
  attempt?: number;
  clock?: Clock;
  /** How long to wait for Klaviyo to finish a merge before handing the change back to the queue. */
  mergeWait?: { attempts: number; firstDelayMs: number };
}

/** A change that cannot be applied as things stand; parked with its reason and the profiles involved. */
export class ChangeParkedError extends PermanentError {
  constructor(
    reason: string,
    message: string,
    readonly context: Record<string, unknown>,
  ) {
    super(reason, message);
  }
}

/** Another customer holds an identifier this change needs; their own change may free it soon. */
export class IdentifierHeldError extends TransientError {
  constructor(
    message: string,
    readonly context: Record<string, unknown>,
  ) {
    super('identifier_held_by_other_customer', message);
  }
}

const MAX_ROUNDS = 4;

/**
 * Brings the customer's Klaviyo profile in line with the change: finds it (external_id, then
 * previous and new identifiers), asks `planChange` what to do, does it, and learns from Klaviyo's
 * answers (a 409 names the profile holding an identifier; a merge changes the profile) until the
 * plan is done. Every final decision is written to the audit log.
 */
export async function syncIdentityChange(
  change: IdentityChange,
  deps: SyncDependencies,
): Promise<SyncResult> {
  const clock = deps.clock ?? (() => new Date());
  /** The profile merged into ours on the way, if any: the result then says so. */
  let merged: string | undefined;
  const state = await deps.state.getState(change.tenant, change.externalId);
  const facts: Facts = { lastAppliedAt: state.lastAppliedAt, found: [], attempt: deps.attempt ?? 1 };
  if (isStale(change.occurredAt, facts.lastAppliedAt)) {
    return finish({
      outcome: 'stale',
      plan: { action: 'skip', reason: 'stale' },
      reason: `a change from ${facts.lastAppliedAt} was applied already`,
    });
  }

  const klaviyo = await deps.klaviyo();
  for (const lookup of lookupOrder(change)) {
    const [profile] = await klaviyo.findProfiles(lookup.field, lookup.value);
    if (profile) facts.found.push({ lookup, profile });
    if (resolved(facts.found, change.externalId)) break;
  }

  for (let round = 1; ; round++) {
    const plan = planChange(change, facts, deps.policies);
    if (deps.dryRun)
      return { outcome: 'planned', plan, profileId: profileOf(plan), reason: 'dry run: nothing written' };
    try {
      return await execute(plan);
    } catch (error) {
      const holderId =
        error instanceof KlaviyoApiError && error.status === 409 ? error.duplicateProfileId : undefined;
      if (!holderId || round >= MAX_ROUNDS) throw error;
      await learnHolder(holderId);
    }
  }

  async function execute(plan: SyncPlan): Promise<SyncResult> {
    const target =
      facts.found.find((found) => found.profile.id === profileOf(plan))?.profile ?? facts.holder?.profile;
    switch (plan.action) {
      case 'skip':
        if (plan.reason === 'stale') return finish({ outcome: 'stale', plan });
        return finish(
          {
            outcome: plan.reason === 'unchanged' ? 'unchanged' : 'skipped',
            plan,
            profileId: plan.profileId,
            reason: plan.reason,
          },
          { recordApplied: true },
        );
      case 'patch':
        await klaviyo.updateProfile(plan.profileId, plan.attributes);
        return finish(
          {
            outcome: plan.bind ? 'bound' : 'applied',
            plan,
            profileId: plan.profileId,
            fields: Object.keys(plan.attributes),
          },
          { recordApplied: true, before: target },
        );
      case 'create': {
        const { profile, created } = await klaviyo.importProfile(plan.attributes);
        return finish(
          {
            outcome: created ? 'created' : 'applied',
            plan,
            profileId: profile.id,
            fields: Object.keys(plan.attributes),
          },
          { recordApplied: true },
        );
      }
      case 'merge-then-patch':
        await klaviyo.mergeProfiles(plan.profileId, plan.sourceId);
        await waitUntilGone(plan.sourceId);
        await refreshAfterMerge(plan.profileId);
        merged = plan.sourceId;
        return execute(planChange(change, facts, deps.policies));
      case 'swap':
        await klaviyo.updateProfile(plan.holderId, plan.release);
        await klaviyo.updateProfile(plan.profileId, plan.attributes);
        await klaviyo.updateProfile(plan.holderId, plan.holderAttributes);
        await recordHolderApplied(plan.holderExternalId, plan.holderId);
        return finish(
          {
            outcome: 'swapped',
            plan,
            profileId: plan.profileId,
            fields: Object.keys(plan.attributes),
            reason: `traded with customer ${plan.holderExternalId}`,
          },
          { recordApplied: true, before: target },
        );
      case 'retry':
        await deps.state.recordPending(change.tenant, change.externalId, {
          identifiers: requestedIdentifiers(change),
          occurredAt: change.occurredAt,
          sourceEventId: change.sourceEventId,
        });
        throw new IdentifierHeldError(
          `An identifier this change needs belongs to another customer's profile ${plan.holderId}; will retry`,
          { profileId: plan.profileId, holderId: plan.holderId },
        );
      case 'park': {
        await audit({ outcome: 'parked', plan, reason: plan.reason });
        throw new ChangeParkedError(plan.reason.replaceAll('-', '_'), parkMessage(plan), {
          profileId: plan.profileId,
          holderId: plan.holderId,
        });
      }
    }
  }

  /** Ends with `result`: marks the change applied for the staleness guard when asked, and audits it. */
  async function finish(
    result: SyncResult,
    { recordApplied = false, before }: { recordApplied?: boolean; before?: KlaviyoProfile } = {},
  ): Promise<SyncResult> {
    const final =
      merged && result.outcome !== 'stale'
        ? { ...result, outcome: 'merged' as const, reason: `merged profile ${merged}` }
        : result;
    if (recordApplied) {
      const recorded = await deps.state.recordApplied({
        tenant: change.tenant,
        externalId: change.externalId,
        occurredAt: change.occurredAt,
        sourceEventId: change.sourceEventId,
        profileId: final.profileId,
      });
      // FIFO groups make this rare: only a replay racing a live change can lose the race.
      if (!recorded) final.reason = 'a newer change was recorded while this one was applied';
    }
    await audit(final, before);
    return final;
  }

  async function audit(
    result: Pick<SyncResult, 'plan' | 'reason'> & { outcome: string },
    before?: KlaviyoProfile,
  ) {
    if (!deps.audit) return;
    const after =
      'attributes' in result.plan ? (result.plan.attributes as Record<string, string | null>) : undefined;
    await deps.audit.record({
      tenant: change.tenant,
      externalId: change.externalId,
      sourceEventId: change.sourceEventId,
      outcome: result.outcome,
      plan: result.plan.action,
      ...(result.reason ? { reason: result.reason } : {}),
      profileIds: [profileOf(result.plan), holderOf(result.plan)].filter((id): id is string => Boolean(id)),
      ...(before
        ? {
            before: {
              email: before.email,
              phone_number: before.phone_number,
              external_id: before.external_id,
            },
          }
        : {}),
      ...(after ? { after } : {}),
      occurredAt: change.occurredAt,
      decidedAt: clock().toISOString(),
    });
  }

  /** Klaviyo named the profile holding an identifier we want: fetch it, and its customer's pending change. */
  async function learnHolder(holderId: string) {
    const profile = await klaviyo.getProfile(holderId);
    if (!profile) return; // gone meanwhile (merged or deleted): the next round simply tries again
    facts.holder = { field: contestedField(profile), profile };
    facts.holderPending = undefined;
    if (profile.external_id && profile.external_id !== change.externalId) {
      const holderState = await deps.state.getState(change.tenant, profile.external_id);
      const pending = holderState.pending;
      if (pending && !isStale(pending.occurredAt, holderState.lastAppliedAt))
        facts.holderPending = pending.identifiers;
    }
  }

  /** Klaviyo's 409 does not say which identifier clashed; the holder's values do. */
  function contestedField(profile: KlaviyoProfile): Holder['field'] {
    const holdsOurPhone = Boolean(change.phoneNumber) && profile.phone_number === change.phoneNumber;
    const holdsOurEmail =
      Boolean(change.email) && profile.email?.toLowerCase() === change.email?.toLowerCase();
    return holdsOurPhone && !holdsOurEmail ? 'phone_number' : 'email';
  }

  async function waitUntilGone(profileId: string) {
    const { attempts, firstDelayMs } = deps.mergeWait ?? { attempts: 8, firstDelayMs: 250 };
    for (let attempt = 0; attempt < attempts; attempt++) {
      if (!(await klaviyo.getProfile(profileId))) return;
      await sleep(Math.min(firstDelayMs * 2 ** attempt, 4_000));
    }
    throw new TransientError('merge_pending', `Klaviyo has not finished merging profile ${profileId} yet`);
  }

  async function refreshAfterMerge(profileId: string) {
    const profile = await klaviyo.getProfile(profileId);
    if (!profile) throw new TransientError('merge_pending', `Profile ${profileId} is missing after a merge`);
    facts.found = [
      { lookup: { key: 'external_id', field: 'external_id', value: change.externalId }, profile },
    ];
    facts.holder = undefined;
  }

  async function recordHolderApplied(holderExternalId: string, holderId: string) {
    const holderState = await deps.state.getState(change.tenant, holderExternalId);
    if (!holderState.pending) return;
    await deps.state.recordApplied({
      tenant: change.tenant,
      externalId: holderExternalId,
      occurredAt: holderState.pending.occurredAt,
      sourceEventId: holderState.pending.sourceEventId,
      profileId: holderId,
    });
  }
}

const profileOf = (plan: SyncPlan) => ('profileId' in plan ? plan.profileId : undefined);
const holderOf = (plan: SyncPlan) =>
  'holderId' in plan ? plan.holderId : 'sourceId' in plan ? plan.sourceId : undefined;

function parkMessage(plan: Extract<SyncPlan, { action: 'park' }>) {
  return plan.reason === 'duplicate-profile'
    ? `Profile ${plan.holderId} duplicates this customer's profile ${plan.profileId}; the tenant's policy is to park`
    : `Profile ${plan.holderId} of another customer still holds an identifier this change needs`;
}
