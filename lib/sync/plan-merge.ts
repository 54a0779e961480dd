import type { CustomerMerge } from '../identity-change.js';
import type { KlaviyoProfile } from '../ports.js';
import { Reason } from '../reasons.js';

/**
 * How a Shopify customer merge is carried over to Klaviyo, decided from plain data (docs/applying-changes.md's
 * "Shopify customer merges" rows; one test each in test/unit/plan-merge.test.ts). Carried out by
 * sync-customer-merge.ts.
 */

/** Each customer's Klaviyo profile, found by its external_id. */
export interface MergeFacts {
  /** The profile of the customer Shopify kept (or of the one it was merged into since). */
  kept?: KlaviyoProfile;
  /** The profile of the customer Shopify deleted. */
  deleted?: KlaviyoProfile;
}

export type MergePlan =
  | {
      action: 'skip';
      reason: typeof Reason.MergeNotCompleted | typeof Reason.NothingToMerge;
      profileId?: string;
    }
  /** Both have a profile: the deleted customer's is merged into the kept one's, the destination. */
  | { action: 'merge-profiles'; profileId: string; sourceId: string }
  /** Only the deleted customer has one: it becomes the kept customer's (its external_id changes). */
  | { action: 'rekey'; profileId: string; attributes: { external_id: string } };

/** Shopify's status of a merge that happened; other statuses (`failed`, …) changed no customer. */
export const isCompleted = (merge: Pick<CustomerMerge, 'status'>) =>
  merge.status.toLowerCase() === 'completed';

/** `survivor`: the kept customer, or the customer it was itself merged into since (see survivorOf). */
export function planCustomerMerge(merge: CustomerMerge, facts: MergeFacts, survivor: string): MergePlan {
  if (!isCompleted(merge)) return { action: 'skip', reason: Reason.MergeNotCompleted };
  const { kept, deleted } = facts;
  if (!deleted) return { action: 'skip', reason: Reason.NothingToMerge, ...(kept && { profileId: kept.id }) };
  if (!kept) return { action: 'rekey', profileId: deleted.id, attributes: { external_id: survivor } };
  return { action: 'merge-profiles', profileId: kept.id, sourceId: deleted.id };
}

/** Which of the profiles found by external_id is whose. */
export function mergeFactsFrom(
  profiles: readonly KlaviyoProfile[],
  { survivor, deleted }: { survivor: string; deleted: string },
): MergeFacts {
  const kept = profiles.find((profile) => profile.external_id === survivor);
  const gone = profiles.find((profile) => profile.external_id === deleted);
  return { ...(kept && { kept }), ...(gone && { deleted: gone }) };
}

/** What a plan's outcome is called, in the words of a change's (and its metric). */
export const outcomeOfMerge = (plan: MergePlan) =>
  plan.action === 'merge-profiles' ? 'merged' : plan.action === 'rekey' ? 'bound' : 'skipped';
