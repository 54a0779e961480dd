import type { AppliedChange } from '../ports.js';
import { lastUnchangedOf, type UnchangedDecisions } from '../sync/unchanged-decisions.js';
import type { Item } from './state-table.js';

interface UnchangedUpdate {
  /** Appended to the SET clause. */
  set: string;
  /** Appended after the REMOVE clause. */
  add: string;
  values: Item;
}

/**
 * A decision that changed nothing is kept on the customer's state item, the last one and a count
 * (`lastUnchanged`, `unchangedCount`), not audited apart: one write, not two.
 */
export function unchangedUpdate(change: AppliedChange): UnchangedUpdate {
  const decidedAt = change.unchangedDecidedAt;
  if (!decidedAt) return { set: '', add: '', values: {} };
  return {
    set: ', lastUnchanged = :unchanged',
    add: ' ADD unchangedCount :one',
    values: {
      ':unchanged': { S: JSON.stringify(lastUnchangedOf(change, decidedAt)) },
      ':one': { N: '1' },
    },
  };
}

/** The unchanged decisions a state item keeps, if any. */
export function unchangedOf(state: Item | undefined): UnchangedDecisions | undefined {
  if (!state?.lastUnchanged?.S) return undefined;
  return {
    last: JSON.parse(state.lastUnchanged.S) as UnchangedDecisions['last'],
    count: Number(state.unchangedCount?.N ?? 1),
  };
}
