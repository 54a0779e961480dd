import type { IdentityChange } from '../identity-change.js';
import type { KlaviyoProfiles } from '../klaviyo/client.js';
import type { SyncStateStore } from '../ports.js';
import { isStale, planChange } from './plan.js';

export type SyncOutcome = 'applied' | 'created' | 'unchanged' | 'stale' | 'skipped';

export interface SyncResult {
  outcome: SyncOutcome;
  profileId?: string;
  /** Which identifiers were written, for the log. */
  fields?: string[];
  reason?: string;
}

export interface SyncDependencies {
  state: SyncStateStore;
  /** Asked only when the change is not stale, so stale changes cost no secret or Klaviyo call. */
  klaviyo: () => Promise<KlaviyoProfiles>;
}

/**
 * Brings the Klaviyo profile whose external_id is the change's customer in line with the change,
 * unless a newer change for that customer has been applied already.
 */
export async function syncIdentityChange(
  change: IdentityChange,
  deps: SyncDependencies,
): Promise<SyncResult> {
  const lastAppliedAt = await deps.state.lastAppliedAt(change.tenant, change.externalId);
  if (isStale(change.occurredAt, lastAppliedAt)) {
    return { outcome: 'stale', reason: `a change from ${lastAppliedAt} was applied already` };
  }

  const klaviyo = await deps.klaviyo();
  const [profile] = await klaviyo.findProfiles('external_id', change.externalId);
  const plan = planChange(change, profile);

  let result: SyncResult;
  switch (plan.action) {
    case 'skip':
      if (plan.reason === 'nothing-to-create') {
        return {
          outcome: 'skipped',
          reason: 'no profile has this external_id and the change has no identifier',
        };
      }
      result = { outcome: 'unchanged', profileId: plan.profileId };
      break;
    case 'patch':
      await klaviyo.updateProfile(plan.profileId, plan.attributes);
      result = { outcome: 'applied', profileId: plan.profileId, fields: Object.keys(plan.attributes) };
      break;
    case 'create': {
      const { profile: created, created: isNew } = await klaviyo.importProfile(plan.attributes);
      result = {
        outcome: isNew ? 'created' : 'applied',
        profileId: created.id,
        fields: Object.keys(plan.attributes),
      };
      break;
    }
  }

  const recorded = await deps.state.recordApplied({
    tenant: change.tenant,
    externalId: change.externalId,
    occurredAt: change.occurredAt,
    sourceEventId: change.sourceEventId,
    profileId: result.profileId,
  });
  // FIFO groups make this rare: only a replay racing a live change can lose the race.
  if (!recorded) return { ...result, reason: 'a newer change was recorded while this one was applied' };
  return result;
}
