import { setTimeout as sleep } from 'node:timers/promises';
import { TransientError } from '../errors.js';
import type { KlaviyoProfile } from '../ports.js';
import { customerRecordKey, sealIdentifiers } from '../privacy/identifier-digest.js';
import { Reason } from '../reasons.js';
import type { KlaviyoContext, SyncOutcome, SyncResult } from './context.js';
import { requestedIdentifiers } from './identifiers.js';
import type { Park, RetryLater } from './outcome.js';
import type { Facts, SyncPlan } from './plan.js';
import { audit, digestsOf, type KnownProfile } from './record-decision.js';

// Kept here for the CLI, which imports them from execute.ts: import them from record-decision.ts.

/**
 * What carrying out one plan led to: a result to record (with the profile as it was before, for
 * the audit); after a merge, the facts to plan again from; or the change not done (the plan's
 * retry or park), with why.
 */
export type Executed =
  | { result: SyncResult; before?: KnownProfile; after?: KnownProfile }
  | { merged: string; facts: Facts }
  | { notDone: RetryLater | Park };

/**
 * Carries out one plan against Klaviyo. Retry and park are values (`notDone`), not errors;
 * Klaviyo's errors, a 409 naming the holder of an identifier included, pass through.
 */
export async function execute(ctx: KlaviyoContext, plan: SyncPlan, facts: Facts): Promise<Executed> {
  const { klaviyo, change } = ctx;
  switch (plan.action) {
    case 'skip': {
      // Stale changes never get here: the staleness guard runs before the lookups.
      const unchanged = plan.reason === Reason.Unchanged;
      return {
        result: {
          outcome: unchanged ? 'unchanged' : 'skipped',
          plan,
          profileId: plan.profileId,
          reason: plan.reason,
        },
        after: unchanged && plan.profileId ? profileSeen(facts, plan.profileId) : undefined,
      };
    }
    case 'patch': {
      const after = await klaviyo.updateProfile(plan.profileId, plan.attributes);
      return {
        result: written(plan.bind ? 'bound' : 'applied', plan, plan.profileId),
        before: profileSeen(facts, plan.profileId),
        after: { profile: after },
      };
    }
    case 'create': {
      const { profile, created } = await klaviyo.importProfile(plan.attributes);
      return { result: written(created ? 'created' : 'applied', plan, profile.id), after: { profile } };
    }
    case 'merge-then-patch':
      await mergeAndWait(ctx, plan.profileId, plan.sourceId);
      return { merged: plan.sourceId, facts: await factsAfterMerge(ctx, plan.profileId, facts) };
    case 'swap': {
      await klaviyo.updateProfile(plan.holderId, plan.release);
      const after = await klaviyo.updateProfile(plan.profileId, plan.attributes);
      const holderAfter = await klaviyo.updateProfile(plan.holderId, plan.holderAttributes);
      await recordHolderApplied(ctx, plan.holderExternalId, holderAfter);
      return {
        result: {
          ...written('swapped', plan, plan.profileId),
          reason: `traded with customer ${plan.holderExternalId}`,
        },
        before: profileSeen(facts, plan.profileId),
        after: { profile: after },
      };
    }
    case 'retry':
      // Kept so that the holder's customer, if its own change is blocked by ours, can trade; sealed
      // to this customer's record, since it waits at rest for as long as the conflict lasts.
      await ctx.state.recordPending(change.tenant, change.externalId, {
        sealedIdentifiers: sealIdentifiers(
          ctx.identifierKey,
          requestedIdentifiers(change),
          customerRecordKey(change.tenant, change.externalId),
        ),
        occurredAt: change.occurredAt,
        ...(change.occurredAtUnsigned && { occurredAtUnsigned: true }),
        sourceEventId: change.sourceEventId,
        conflicts: facts.attempt,
      });
      return {
        notDone: {
          status: 'retry-later',
          planned: true,
          reason: plan.reason,
          detail: `An identifier this change needs belongs to another customer's profile ${plan.holderId}; will retry`,
          context: profilesOf(facts, plan),
        },
      };
    case 'park':
      await audit(ctx, { outcome: 'parked', plan, reason: plan.reason });
      return {
        notDone: {
          status: 'park',
          planned: true,
          reason: plan.reason,
          detail: parkMessage(plan),
          context: profilesOf(facts, plan),
        },
      };
  }
}

const written = (
  outcome: SyncOutcome,
  plan: Extract<SyncPlan, { attributes: unknown }>,
  profileId: string,
): SyncResult => ({ outcome, plan, profileId, fields: Object.keys(plan.attributes) });

/** The profile as the record, the lookups (or a 409) showed it, before this change. */
const profileSeen = (facts: Facts, id: string): KnownProfile | undefined =>
  facts.found.find((found) => found.profile.id === id) ??
  (facts.holder?.profile.id === id ? { profile: facts.holder.profile } : undefined);

/** The customer whose profile holds what the change needs, as the lookups showed it: for people to see. */
const holderOf = (facts: Facts, plan: { holderId?: string }) =>
  plan.holderId ? (profileSeen(facts, plan.holderId)?.profile.external_id ?? undefined) : undefined;

/** The profiles a change not done is about: for people to see, in its letter and log. */
const profilesOf = (facts: Facts, plan: { profileId?: string | undefined; holderId: string }) => ({
  profileId: plan.profileId,
  holderId: plan.holderId,
  holderExternalId: holderOf(facts, plan),
});

/** How long a merge is waited for by default: about 20 s in all. */
export const DEFAULT_MERGE_WAIT: KlaviyoContext['mergeWait'] = { attempts: 8, firstDelayMs: 250 };

/**
 * Merges `sourceId` into `destinationId` and waits until Klaviyo is done: the one merge step of the
 * worker, of Shopify customer merges and of `identity-sync duplicates --apply`.
 */
export async function mergeAndWait(
  ctx: Pick<KlaviyoContext, 'klaviyo' | 'mergeWait'>,
  destinationId: string,
  sourceId: string,
): Promise<void> {
  await ctx.klaviyo.mergeProfiles(destinationId, sourceId);
  await waitUntilGone(ctx, sourceId);
}

/** Klaviyo merges asynchronously: the source is gone once it is done. */
async function waitUntilGone(
  { klaviyo, mergeWait }: Pick<KlaviyoContext, 'klaviyo' | 'mergeWait'>,
  profileId: string,
) {
  for (let attempt = 0; attempt < mergeWait.attempts; attempt++) {
    if (!(await klaviyo.getProfile(profileId))) return;
    await sleep(Math.min(mergeWait.firstDelayMs * 2 ** attempt, 4_000));
  }
  throw new TransientError(Reason.MergePending, `Klaviyo has not finished merging profile ${profileId} yet`);
}

/** The merged profile is ours now, found afresh; the duplicate that held our identifier is gone. */
async function factsAfterMerge({ klaviyo, change }: KlaviyoContext, profileId: string, facts: Facts) {
  const profile = await klaviyo.getProfile(profileId);
  if (!profile)
    throw new TransientError(Reason.MergePending, `Profile ${profileId} is missing after a merge`);
  return {
    ...facts,
    found: [{ lookup: { key: 'external_id', field: 'external_id', value: change.externalId }, profile }],
    holder: undefined,
  } satisfies Facts;
}

/** The swap carried out the holder's blocked change too: mark it applied for the staleness guard. */
async function recordHolderApplied(
  { state, change, identifierKey }: KlaviyoContext,
  holderExternalId: string,
  holderAfter: KlaviyoProfile,
) {
  const { pending } = await state.getState(change.tenant, holderExternalId);
  if (!pending) return;
  await state.recordApplied({
    tenant: change.tenant,
    externalId: holderExternalId,
    occurredAt: pending.occurredAt,
    ...(pending.occurredAtUnsigned && { occurredAtUnsigned: true }),
    sourceEventId: pending.sourceEventId,
    profileId: holderAfter.id,
    digests: digestsOf(identifierKey, { profile: holderAfter }),
    // The holder's erasure (its own message group) may have deleted the item since: never remake it.
    onlyIfHeld: true,
  });
}

function parkMessage(plan: Extract<SyncPlan, { action: 'park' }>) {
  return plan.reason === Reason.DuplicateProfile
    ? `Profile ${plan.holderId} duplicates this customer's profile ${plan.profileId}; the tenant's policy is to park`
    : `Profile ${plan.holderId} of another customer still holds an identifier this change needs`;
}
