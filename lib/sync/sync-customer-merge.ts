import type { CustomerMerge } from '../identity-change.js';
import { KlaviyoApiError } from '../klaviyo/errors.js';
import type { CustomerState, KlaviyoProfiles } from '../ports.js';
import { Reason } from '../reasons.js';
import type { SyncOutcome } from './context.js';
import { DEFAULT_MERGE_WAIT, mergeAndWait } from './execute.js';
import {
  isCompleted,
  type MergePlan,
  mergeFactsFrom,
  outcomeOfMerge,
  planCustomerMerge,
} from './plan-merge.js';
import type { SyncDependencies } from './sync-identity-change.js';

export type MergeDependencies = Pick<
  SyncDependencies,
  'state' | 'audit' | 'klaviyo' | 'dryRun' | 'clock' | 'mergeWait'
> & {
  /** The kept customer's state, when the caller has just read it (handle-message.ts): not read again. */
  keptState?: CustomerState | undefined;
};

export interface MergeResult {
  outcome: SyncOutcome;
  plan: MergePlan;
  /** The profile the kept customer is left with, when it has one. */
  profileId?: string;
  /** The plan's reason when skipped; otherwise what was done. */
  reason?: string;
}

/** How many merges into merges are followed to find who stands for a kept customer now. */
const MAX_MERGE_CHAIN = 5;
/** Plans made afresh when Klaviyo's profiles changed under one (a 404 or 409 to its request). */
const MAX_PLANS = 3;

/**
 * Carries a Shopify customer merge over to Klaviyo. The merge is Shopify's fact before it is
 * Klaviyo's work: the deleted customer is marked merged first, so none of its changes (late, or
 * replayed) can bring its profile back whatever Klaviyo answers. Then both customers' profiles are
 * found by external_id (one request), and the deleted one's is merged into the kept one's, or
 * re-keyed when it is the only one. The kept customer's record forgets its profile, whose
 * identifiers the merge may have filled behind it; both customers' histories get the decision.
 */
export async function syncCustomerMerge(merge: CustomerMerge, deps: MergeDependencies): Promise<MergeResult> {
  const { tenant, keptExternalId, deletedExternalId } = merge;
  if (!isCompleted(merge)) {
    // Shopify changed no customer: nothing to record, nothing to ask Klaviyo.
    const plan = planCustomerMerge(merge, {}, keptExternalId);
    return audited(
      merge,
      keptExternalId,
      { outcome: 'skipped', plan, reason: Reason.MergeNotCompleted },
      deps,
    );
  }
  if (!deps.dryRun) {
    await deps.state.recordMerged({
      tenant,
      externalId: deletedExternalId,
      intoExternalId: keptExternalId,
      mergedAt: merge.occurredAt,
    });
  }
  const survivor = await survivorOf(
    keptExternalId,
    deletedExternalId,
    async (id) => (id === keptExternalId && deps.keptState) || deps.state.getState(tenant, id),
  );
  const klaviyo = await deps.klaviyo();
  for (let plans = 1; ; plans++) {
    const found = await klaviyo.findProfilesAmong('external_id', [survivor, deletedExternalId]);
    const facts = mergeFactsFrom(found, { survivor, deleted: deletedExternalId });
    const plan = planCustomerMerge(merge, facts, survivor);
    if (deps.dryRun) return { outcome: 'planned', plan, reason: 'dry run: nothing written' };
    let result: MergeResult;
    try {
      result = await carryOut(plan, klaviyo, deps);
    } catch (error) {
      // A profile merged away meanwhile, or the kept customer's profile made meanwhile: look again.
      const changedMeanwhile = error instanceof KlaviyoApiError && [404, 409].includes(error.status);
      if (!changedMeanwhile || plans === MAX_PLANS) throw error;
      continue;
    }
    // The merge may have filled identifiers of the kept customer's profile behind its record.
    if (result.outcome !== 'skipped') await deps.state.forgetProfile(tenant, survivor);
    return audited(merge, survivor, result, deps);
  }
}

async function carryOut(
  plan: MergePlan,
  klaviyo: KlaviyoProfiles,
  deps: MergeDependencies,
): Promise<MergeResult> {
  const outcome = outcomeOfMerge(plan);
  switch (plan.action) {
    case 'skip':
      return { outcome, plan, profileId: plan.profileId, reason: plan.reason };
    case 'merge-profiles':
      await mergeAndWait(
        { klaviyo, mergeWait: deps.mergeWait ?? DEFAULT_MERGE_WAIT },
        plan.profileId,
        plan.sourceId,
      );
      return { outcome, plan, profileId: plan.profileId, reason: `merged profile ${plan.sourceId}` };
    case 'rekey':
      await klaviyo.updateProfile(plan.profileId, plan.attributes);
      return {
        outcome,
        plan,
        profileId: plan.profileId,
        reason: `profile re-keyed to ${plan.attributes.external_id}`,
      };
  }
}

/**
 * The customer that stands for `kept` now: itself, or, when Shopify has merged it away too since,
 * the customer it went into (followed MAX_MERGE_CHAIN times at most).
 */
export async function survivorOf(
  kept: string,
  deleted: string,
  stateOf: (externalId: string) => Promise<Pick<CustomerState, 'mergedInto'>>,
): Promise<string> {
  let survivor = kept;
  for (let step = 0; step < MAX_MERGE_CHAIN; step++) {
    const next = (await stateOf(survivor)).mergedInto;
    // A merge that leads back to the deleted customer is no way forward.
    if (!next || next === deleted) break;
    survivor = next;
  }
  return survivor;
}

/** The decision, in both customers' histories; returns the result. */
async function audited(
  merge: CustomerMerge,
  survivor: string,
  result: MergeResult,
  deps: MergeDependencies,
): Promise<MergeResult> {
  if (!deps.audit) return result;
  const { plan } = result;
  const profileIds = [plan.profileId, 'sourceId' in plan ? plan.sourceId : undefined].filter(
    (id): id is string => Boolean(id),
  );
  const decidedAt = (deps.clock ?? (() => new Date()))().toISOString();
  for (const [externalId, whose] of [
    [merge.deletedExternalId, `merged into customer ${survivor}`],
    [survivor, `customer ${merge.deletedExternalId} merged into this one`],
  ] as const) {
    await deps.audit.record({
      tenant: merge.tenant,
      externalId,
      sourceEventId: merge.sourceEventId,
      outcome: result.outcome,
      plan: plan.action,
      reason: plan.action === 'skip' ? plan.reason : `${whose}: ${result.reason}`,
      profileIds,
      occurredAt: merge.occurredAt,
      decidedAt,
    });
  }
  return result;
}
