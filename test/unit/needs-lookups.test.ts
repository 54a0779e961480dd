import { describe, expect, it } from 'vitest';
import type { CustomerState } from '../../lib/ports.js';
import { needsLookups } from '../../lib/sync/needs-lookups.js';
import { earlySkipOf } from '../../lib/sync/staleness.js';
import { aChange, recordedDigestsOf } from '../support/factories.js';

/** The change's time is noon; a record's watermark before or after it. */
const BEFORE = '2026-05-01T11:00:00.000Z';
const AFTER = '2026-05-01T13:00:00.000Z';
const change = aChange({ occurredAt: '2026-05-01T12:00:00.000Z' });
const recorded = { profileId: '01P', digests: recordedDigestsOf({ email: 'a@example.com' }) };
const merged = { mergedInto: 'C-2', mergedAt: BEFORE };

/** Before any lookup: skipped (and how), or to be planned; and whether the customer is then looked up. */
const ROWS: [situation: string, state: CustomerState, skip: string | undefined, lookUp: boolean][] = [
  ['a customer never seen', {}, undefined, true],
  ['a customer whose last change was older', { lastAppliedAt: BEFORE }, undefined, true],
  [
    'a customer whose last change happened at the same time',
    { lastAppliedAt: change.occurredAt },
    undefined,
    true,
  ],
  ['a recorded profile', { lastAppliedAt: BEFORE, ...recorded }, undefined, false],
  ['a recorded profile id without digests (recorded before them)', { profileId: '01P' }, undefined, true],
  ['a newer change applied: stale', { lastAppliedAt: AFTER }, 'stale', false],
  ['stale, with a recorded profile', { lastAppliedAt: AFTER, ...recorded }, 'stale', false],
  ['a customer merged away into another', merged, 'merged_into_other_customer', false],
  ['merged away, with a recorded profile', { ...merged, ...recorded }, 'merged_into_other_customer', false],
  [
    'merged away and stale: merged away is said first',
    { ...merged, lastAppliedAt: AFTER },
    'merged_into_other_customer',
    false,
  ],
];

describe('before the lookups: early skips and whether the customer is looked up', () => {
  it.each(ROWS)('%s', (_, state, skip, lookUp) => {
    expect(earlySkipOf(change, state)?.reason).toBe(skip);
    expect(needsLookups(change, state)).toBe(lookUp);
  });

  it('says why in words', () => {
    expect(earlySkipOf(change, merged)).toEqual({
      outcome: 'skipped',
      reason: 'merged_into_other_customer',
      why: `merged into customer C-2 at ${BEFORE}`,
    });
    expect(earlySkipOf(change, { lastAppliedAt: AFTER })).toEqual({
      outcome: 'stale',
      reason: 'stale',
      why: `a change from ${AFTER} was applied already`,
    });
  });
});
