import type { IdentityChange } from '../identity-change.js';
import { KlaviyoApiError } from '../klaviyo/errors.js';
import type { Policies } from '../policies.js';
import type { AuditLog, Clock, CustomerState, KlaviyoProfiles, SyncStateStore } from '../ports.js';
import { digestIdentifiers, type IdentifierKey } from '../privacy/identifier-digest.js';
import { Reason } from '../reasons.js';
import type { KeyedContext, KlaviyoContext, SyncContext, SyncResult } from './context.js';
import { DEFAULT_MERGE_WAIT, type Executed, execute } from './execute.js';
import { recordedProfile } from './identifiers.js';
import { type ChangeOutcome, done, resultOrThrow } from './outcome.js';
import { type Facts, planChange, type SyncPlan } from './plan.js';
import { audit, profileOf, recordApplied } from './record-decision.js';
import { learnHolder, resolveProfiles, verifyRecorded } from './resolve.js';
import { earlySkipOf } from './staleness.js';

export type { SyncOutcome, SyncResult } from './context.js';
export { ChangeParkedError, IdentifierHeldError } from './outcome.js';

export interface SyncDependencies {
  state: SyncStateStore;
  /** Asked only when the change is not stale, so stale changes cost no secret or Klaviyo call. */
  klaviyo: () => Promise<KlaviyoProfiles>;
  /**
   * The tenant's key for identifiers at rest (from its secret, as cached with the Klaviyo key):
   * asked only when the change is not stale; a no-op needs it, but no Klaviyo client.
   */
  identifierKey: () => Promise<IdentifierKey>;
  policies: Policies;
  audit?: AuditLog;
  /** Look up and decide, but write nothing; the plan is the result. */
  dryRun?: boolean;
  /** The customer's state, when the caller has just read it (handle-message.ts): not read again. */
  stateRead?: CustomerState | undefined;
  /** How many times this change has been delivered (SQS receive count), 1 at first. */
  attempt?: number;
  clock?: Clock;
  /** How long to wait for Klaviyo to finish a merge before handing the change back to the queue. */
  mergeWait?: KlaviyoContext['mergeWait'];
}

/** 409s learned from before giving up: each names a holder we then plan around. */
const MAX_HOLDERS_LEARNED = 3;

/**
 * syncIdentityChange for callers that take a change not done as an error (IdentifierHeldError,
 * ChangeParkedError, or the failure itself): the CLI's rows, until they use queueActionOf.
 */
export const syncIdentityChange = async (
  change: IdentityChange,
  deps: SyncDependencies,
): Promise<SyncResult> => resultOrThrow(await applyIdentityChange(change, deps));

/**
 * Brings the customer's Klaviyo profile in line with the change. Skips it if stale; resolves the
 * profile (lookups); plans (plan.ts decides, pure); executes the plan; and learns from Klaviyo's
 * answers until the plan is done: a 409 names the profile holding an identifier, a merge changes
 * the profile, and either way the change is planned again. Every final decision is audited.
 * Returns what it came to: done, or the plan's retry or park; throws only for failures on the way.
 */
export async function applyIdentityChange(
  change: IdentityChange,
  deps: SyncDependencies,
): Promise<ChangeOutcome<SyncResult>> {
  const context: SyncContext = {
    change,
    state: deps.state,
    audit: deps.audit,
    clock: deps.clock ?? (() => new Date()),
  };
  const state = deps.stateRead ?? (await deps.state.getState(change.tenant, change.externalId));
  const early = earlySkipOf(change, state);
  if (early) {
    const result: SyncResult = {
      outcome: early.outcome,
      plan: { action: 'skip', reason: early.reason },
      reason: early.why,
    };
    await audit(context, result);
    return done(result);
  }
  const { lastAppliedAt } = state;

  const keyed: KeyedContext = { ...context, identifierKey: await deps.identifierKey() };
  const known = {
    lastAppliedAt,
    attempt: conflictAttempt(change, state, deps.attempt ?? 1),
    // What a recorded profile is compared with: the record keeps digests, never the values.
    wanted: digestIdentifiers(keyed.identifierKey, { email: change.email, phone_number: change.phoneNumber }),
  };
  const recorded = recordedProfile(change, state, keyed.identifierKey.id);
  const trustRecord = recorded !== undefined && !deps.policies.verifyUnchanged;
  let facts: Facts = { ...known, found: trustRecord ? [recorded] : [] };

  // Nothing differs from what we last applied: done, without asking Klaviyo (or for its key).
  const planFromRecord = trustRecord ? planChange(change, facts, deps.policies) : undefined;
  if (planFromRecord?.action === 'skip' && planFromRecord.reason === Reason.Unchanged) {
    if (deps.dryRun) return done(planned(planFromRecord));
    const result: SyncResult = {
      outcome: 'unchanged',
      plan: planFromRecord,
      profileId: recorded?.profile.id,
      reason: Reason.Unchanged,
    };
    return done(await recordApplied(keyed, result, { before: recorded, after: recorded }));
  }

  const ctx: KlaviyoContext = {
    ...keyed,
    klaviyo: await deps.klaviyo(),
    mergeWait: deps.mergeWait ?? DEFAULT_MERGE_WAIT,
  };
  if (!trustRecord) {
    facts = recorded ? await verifyRecorded(ctx, recorded, known) : await resolveProfiles(ctx, known);
  }
  if (deps.dryRun) return done(planned(planChange(change, facts, deps.policies)));

  /** The duplicate merged into ours on the way, if any: the result then says so. */
  let merged: string | undefined;
  let holdersLearned = 0;
  for (;;) {
    let executed: Executed;
    try {
      executed = await execute(ctx, planChange(change, facts, deps.policies), facts);
    } catch (error) {
      // The record was wrong (profile merged away or deleted, an identifier taken meanwhile):
      // find the profile as if there were no record, and plan again.
      if (isFromRecord(facts) && recordProvedWrong(error)) {
        facts = await resolveProfiles(ctx, known);
        continue;
      }
      const holderId = holderNamedBy(error);
      if (!holderId || holdersLearned === MAX_HOLDERS_LEARNED) throw error;
      holdersLearned++;
      facts = await learnHolder(ctx, facts, holderId);
      continue;
    }
    if ('notDone' in executed) return executed.notDone;
    if ('merged' in executed) {
      ({ merged, facts } = executed);
      continue;
    }
    const { result, before, after } = executed;
    return done(
      await recordApplied(
        ctx,
        merged ? { ...result, outcome: 'merged', reason: `merged profile ${merged}` } : result,
        { before, after },
      ),
    );
  }
}

/**
 * Which of this change's tries against another customer's identifier this is: one more than the
 * conflicts its pending record counts (a record from before they were counted: its deliveries).
 */
function conflictAttempt(change: IdentityChange, { pending }: CustomerState, deliveries: number): number {
  if (pending?.sourceEventId !== change.sourceEventId) return 1;
  return (pending.conflicts ?? deliveries - 1) + 1;
}

const planned = (plan: SyncPlan): SyncResult => ({
  outcome: 'planned',
  plan,
  profileId: profileOf(plan),
  reason: 'dry run: nothing written',
});

/** Facts that rest on the record alone, not on anything Klaviyo said in this sync. */
const isFromRecord = (facts: Facts) => facts.found.length === 1 && facts.found[0]?.lookup.key === 'recorded';

/** A 404 (profile gone) or 409 (identifier held elsewhere) to a PATCH planned from the record. */
const recordProvedWrong = (error: unknown) =>
  error instanceof KlaviyoApiError && (error.status === 404 || error.status === 409);

/** The profile Klaviyo's 409 duplicate_profile says holds an identifier we tried to set. */
const holderNamedBy = (error: unknown) =>
  error instanceof KlaviyoApiError && error.status === 409 ? error.duplicateProfileId : undefined;
