import { describe, expect, it } from 'vitest';
import { mergeFactsFrom, planCustomerMerge } from '../../lib/sync/plan-merge.js';
import { aCustomerMerge, aProfile } from '../support/factories.js';

/** The decision for a Shopify customer merge: one test per row of docs/applying-changes.md's merge rows. */
const KEPT = '2002';
const DELETED = '1001';

const keptProfile = aProfile({ id: '01KEPT', external_id: KEPT, email: 'kept@example.com' });
const deletedProfile = aProfile({ id: '01DELETED', external_id: DELETED, email: 'deleted@example.com' });

describe('planCustomerMerge', () => {
  it('merges the deleted customer’s profile into the kept one’s, the destination, when both exist', () => {
    expect(planCustomerMerge(aCustomerMerge(), { kept: keptProfile, deleted: deletedProfile }, KEPT)).toEqual(
      {
        action: 'merge-profiles',
        profileId: '01KEPT',
        sourceId: '01DELETED',
      },
    );
  });

  it('re-keys the deleted customer’s profile to the kept customer when it is the only one', () => {
    expect(planCustomerMerge(aCustomerMerge(), { deleted: deletedProfile }, KEPT)).toEqual({
      action: 'rekey',
      profileId: '01DELETED',
      attributes: { external_id: KEPT },
    });
  });

  it('re-keys to the customer the kept one was merged into since, when it was', () => {
    expect(planCustomerMerge(aCustomerMerge(), { deleted: deletedProfile }, '3003')).toMatchObject({
      attributes: { external_id: '3003' },
    });
  });

  it('has nothing to do when only the kept customer has a profile', () => {
    expect(planCustomerMerge(aCustomerMerge(), { kept: keptProfile }, KEPT)).toEqual({
      action: 'skip',
      reason: 'nothing_to_merge',
      profileId: '01KEPT',
    });
  });

  it('has nothing to do when neither customer has a profile', () => {
    expect(planCustomerMerge(aCustomerMerge(), {}, KEPT)).toEqual({
      action: 'skip',
      reason: 'nothing_to_merge',
    });
  });

  it.each(['failed', 'in_progress', 'FAILED'])(
    'skips a merge whose status is %s: merge_not_completed',
    (status) => {
      expect(
        planCustomerMerge(aCustomerMerge({ status }), { kept: keptProfile, deleted: deletedProfile }, KEPT),
      ).toEqual({ action: 'skip', reason: 'merge_not_completed' });
    },
  );

  it('takes COMPLETED as completed, whatever its case', () => {
    expect(planCustomerMerge(aCustomerMerge({ status: 'COMPLETED' }), {}, KEPT)).toMatchObject({
      reason: 'nothing_to_merge',
    });
  });
});

describe('mergeFactsFrom', () => {
  it('tells the profiles found by external_id apart by whose id they carry', () => {
    expect(mergeFactsFrom([deletedProfile, keptProfile], { survivor: KEPT, deleted: DELETED })).toEqual({
      kept: keptProfile,
      deleted: deletedProfile,
    });
    expect(mergeFactsFrom([deletedProfile], { survivor: KEPT, deleted: DELETED })).toEqual({
      deleted: deletedProfile,
    });
  });
});
