import { TransientError } from '../errors.js';
import { maskIdentifiersInText } from '../observability/mask.js';
import type { AuditLog, Clock, KlaviyoProfile, KlaviyoProfiles, SyncStateStore } from '../ports.js';
import { Reason } from '../reasons.js';
import type { KlaviyoContext } from '../sync/context.js';
import { mergeAndWait } from '../sync/execute.js';
import type { CandidatePair } from './match.js';

/**
 * Carries out one pair of `identity-sync duplicates --apply`: both profiles are read again, the
 * pair is refused when either changed in a way that voids it, and otherwise the source is merged
 * into the customer's profile through the worker's merge step. The decision goes to the
 * customer's audit trail.
 */

/** The plan's name in the audit trail. */
export const MERGE_DUPLICATE_PLAN = 'merge-duplicate';

export type PairOutcome = 'merged' | 'merge_pending' | 'refused';

export interface PairResult {
  outcome: PairOutcome;
  reason: string;
}

/** Why a pair found by the scan must not be merged now, spelt as in the results. */
export const Refusal = {
  SourceHasExternalId: 'source_has_external_id',
  SourceGone: 'source_gone',
  SourceChanged: 'source_changed',
  DestinationGone: 'destination_gone',
  DestinationChanged: 'destination_changed',
} as const;

/**
 * Whether the pair still stands, judged on both profiles as Klaviyo has them now: a reason and
 * words when it does not (undefined: merge). Two profiles that both carry an external_id are
 * never merged: they are two customers.
 */
export function refusalOf(
  { destination, source }: CandidatePair,
  now: { destination?: KlaviyoProfile; source?: KlaviyoProfile },
): { reason: string; detail: string } | undefined {
  const refuse = (reason: string, detail: string) => ({ reason, detail });
  if (!now.destination)
    return refuse(Refusal.DestinationGone, `the customer's profile ${destination.id} no longer exists`);
  if (!now.source)
    return refuse(Refusal.SourceGone, `profile ${source.id} no longer exists (merged or deleted since)`);
  if (now.source.external_id !== null) {
    return refuse(
      Refusal.SourceHasExternalId,
      `profile ${source.id} now carries external_id ${now.source.external_id}: two customers' profiles are never merged`,
    );
  }
  if (now.destination.external_id !== destination.external_id) {
    return refuse(
      Refusal.DestinationChanged,
      `profile ${destination.id} carries external_id ${now.destination.external_id ?? '(none)'} now, not ${destination.external_id}`,
    );
  }
  if (now.source.email?.toLowerCase() !== source.email?.toLowerCase())
    return refuse(Refusal.SourceChanged, `profile ${source.id}'s email changed since the scan`);
  return undefined;
}

export interface MergePairDependencies {
  tenant: string;
  klaviyo: KlaviyoProfiles;
  state: SyncStateStore;
  audit: AuditLog;
  clock: Clock;
  mergeWait: KlaviyoContext['mergeWait'];
}

/** Klaviyo's errors pass through (nothing was merged); a merge still under way is `merge_pending`. */
export async function mergePair(pair: CandidatePair, deps: MergePairDependencies): Promise<PairResult> {
  const { destination, source } = pair;
  const found = await deps.klaviyo.findProfilesAmong('id', [destination.id, source.id]);
  const refusal = refusalOf(pair, {
    destination: found.find((profile) => profile.id === destination.id),
    source: found.find((profile) => profile.id === source.id),
  });
  if (refusal) {
    const reason = `${refusal.reason}: ${refusal.detail}`;
    await record(pair, 'skipped', reason, deps);
    return { outcome: 'refused', reason };
  }
  let result: PairResult = { outcome: 'merged', reason: `merged profile ${source.id}` };
  try {
    await mergeAndWait(deps, destination.id, source.id);
  } catch (error) {
    if (!(error instanceof TransientError && error.reason === Reason.MergePending)) throw error;
    result = {
      outcome: 'merge_pending',
      reason: `Klaviyo accepted the merge of ${source.id} and is still carrying it out`,
    };
  }
  // The merge may have filled identifiers of the customer's profile behind its record.
  await deps.state.forgetProfile(deps.tenant, destination.external_id as string);
  await record(pair, 'merged', result.reason, deps);
  return result;
}

/** In the customer's audit trail, so `identity-sync history` shows what was merged into it and why. */
async function record(pair: CandidatePair, outcome: string, what: string, deps: MergePairDependencies) {
  const now = deps.clock().toISOString();
  await deps.audit.record({
    tenant: deps.tenant,
    externalId: pair.destination.external_id as string,
    sourceEventId: `cli:duplicates:${pair.source.id}`,
    outcome,
    plan: MERGE_DUPLICATE_PLAN,
    // The audit trail keeps no email as it is: the rule's words are masked.
    reason: `${pair.rule} (confidence ${pair.confidence}): ${maskIdentifiersInText(pair.why)}; ${what}`,
    profileIds: [pair.destination.id, pair.source.id],
    occurredAt: now,
    decidedAt: now,
  });
}
