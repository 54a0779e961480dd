import type { IdentityChange } from '../../lib/identity-change.js';
import type { BulkImportProfile, KlaviyoProfiles, SyncStateStore } from '../../lib/ports.js';
import { Reason } from '../../lib/reasons.js';
import { withBatchedLookups } from '../../lib/sync/batched-lookups.js';
import {
  ERASED_CUSTOMER_SKIP,
  type ErasureLookup,
  namesErasedCustomer,
  statesOfCustomersNamed,
} from '../../lib/sync/handle-compliance.js';
import { needsLookups } from '../../lib/sync/needs-lookups.js';
import type { SyncPlan } from '../../lib/sync/plan.js';
import { recordApplied } from '../../lib/sync/record-decision.js';
import { syncIdentityChange } from '../../lib/sync/sync-identity-change.js';
import { BATCH_OPTIONS_HELP, type BatchCommand } from '../batch.js';
import { APPLY_DRY_RUN_OUTCOMES, APPLY_OUTCOMES } from '../results.js';
import { type ApplyTask, applyTaskOf, REQUIRED_COLUMNS } from '../rows.js';
import { batchCommandLine } from '../run-batch.js';
import { mapConcurrently } from '../run-in-order.js';

const USAGE = `Usage: identity-sync apply <file> [options]

Applies identity changes from <file> to Klaviyo, one row per change, as the worker applies
changes from the queue: same lookups, decisions, tenant policies and audit trail.
<file> is NDJSON (.ndjson, .jsonl) or CSV with a header row (.csv). Fields:
  externalId      the customer's id in the system of record (required)
  email, phone    the new identifiers; empty or absent leaves the profile's as it is
  previousEmail, previousPhone   what they were, to find the profile by (optional)
  occurredAt      when the change happened, ISO 8601 with offset (default: when the file is read)

${BATCH_OPTIONS_HELP}`;

/** What settling a row a bulk job created needs: the attributes it was created with. */
interface ApplyPlanned {
  attributes: Required<BulkImportProfile>['attributes'];
}

/** Rows run through a Klaviyo client that already knows the answers to their chunk's lookups. */
export const applyCommand: BatchCommand<ApplyTask, KlaviyoProfiles> = {
  name: 'apply',
  outcomes: APPLY_OUTCOMES,
  dryRunOutcomes: APPLY_DRY_RUN_OUTCOMES,
  requiredColumns: REQUIRED_COLUMNS.apply,
  taskOf: applyTaskOf,
  async lookUp(tasks, session, dryRun) {
    const klaviyo = withBatchedLookups(session.klaviyo);
    await klaviyo.prefetch(await changesToLookUp(tasks, session.state, dryRun, session.erasures));
    return klaviyo;
  },
  async run({ change }, session, dryRun, lookups) {
    const klaviyo = lookups ?? session.klaviyo;
    // As the worker: the state read tells whether the erasure record needs reading, and is handed on.
    const statesRead = await statesOfCustomersNamed(change, session.state);
    if (await namesErasedCustomer(change, statesRead, session.erasures)) {
      return { outcome: dryRun ? 'would-skip' : 'skipped', reason: ERASED_CUSTOMER_SKIP.reason };
    }
    const result = await syncIdentityChange(change, {
      state: session.state,
      stateRead: statesRead.get(change.externalId),
      audit: session.audit,
      klaviyo: async () => klaviyo,
      identifierKey: async () => session.identifierKey,
      policies: session.policies,
      dryRun,
    });
    return {
      outcome: result.outcome === 'planned' ? dryRunOutcomeOf(result.plan) : result.outcome,
      ...(result.outcome === 'planned'
        ? { reason: describePlan(result.plan) }
        : result.reason && { reason: result.reason }),
      ...(result.profileId && { profileId: result.profileId }),
    };
  },
  bulk: {
    keysOf: ({ change }) =>
      [
        `id:${change.externalId}`,
        change.email && `email:${change.email.toLowerCase()}`,
        change.previous?.email && `email:${change.previous.email.toLowerCase()}`,
        change.phoneNumber && `phone:${change.phoneNumber}`,
        change.previous?.phoneNumber && `phone:${change.previous.phoneNumber}`,
      ].filter((key): key is string => Boolean(key)),
    /**
     * Only a customer the lookups found nowhere, to be created (the worker's plan, made without
     * writing); never an erased customer (the row is then run on its own, and skipped).
     */
    async plan({ change }, session, lookups) {
      const statesRead = await statesOfCustomersNamed(change, session.state);
      if (await namesErasedCustomer(change, statesRead, session.erasures)) return undefined;
      const { plan } = await syncIdentityChange(change, {
        state: session.state,
        stateRead: statesRead.get(change.externalId),
        klaviyo: async () => lookups,
        identifierKey: async () => session.identifierKey,
        policies: session.policies,
        dryRun: true,
      });
      if (plan.action !== 'create') return undefined;
      const attributes: ApplyPlanned['attributes'] = {};
      for (const [field, value] of Object.entries(plan.attributes)) {
        // A bulk import cannot clear a field; a new profile has nothing to clear anyway.
        if (typeof value === 'string') attributes[field as keyof ApplyPlanned['attributes']] = value;
      }
      return { planned: { attributes } satisfies ApplyPlanned, profile: { attributes } };
    },
    async settle(jobId, done, session) {
      // The job answers with counts, not with which profile is whose: each is found by its external_id.
      const imported = done.filter((row) => !row.error).map((row) => row.task.externalId);
      const profiles = new Map(
        (await session.klaviyo.findProfilesAmong('external_id', imported)).map((profile) => [
          profile.external_id,
          profile,
        ]),
      );
      return mapConcurrently(done, SETTLE_CONCURRENCY, async ({ task, planned, error }) => {
        // Someone else holds an identifier now: the row is looked at afresh, with the worker's guards.
        if (error?.code === 'duplicate_profile') return 'again';
        if (error) {
          return {
            outcome: 'failed',
            reason: `klaviyo_${error.code}: bulk import job ${jobId} could not create it: ${error.detail}${error.pointer ? ` (${error.pointer})` : ''}`,
          };
        }
        const profile = profiles.get(task.externalId);
        if (!profile) return 'again';
        const { attributes } = planned as ApplyPlanned;
        const result = await recordApplied(
          {
            change: task.change,
            state: session.state,
            audit: session.audit,
            clock: () => new Date(),
            identifierKey: session.identifierKey,
          },
          {
            outcome: 'created',
            plan: { action: 'create', attributes },
            profileId: profile.id,
            fields: Object.keys(attributes),
          },
          { after: { profile } },
        );
        return {
          outcome: result.outcome,
          ...(result.reason && { reason: result.reason }),
          profileId: profile.id,
        };
      });
    },
  },
};

/** State and audit writes at once while a job's rows are settled. */
const SETTLE_CONCURRENCY = 16;

/** `identity-sync apply <file>`: applies a file of identity changes. */
export const apply = batchCommandLine(USAGE, () => applyCommand);

/**
 * The changes whose customers must be looked up, as the worker chooses them: the first row of each
 * customer that is not stale and whose profile the sync state does not record (the later rows find
 * the record the first leaves; in a dry run nothing is recorded, so every such row). A customer
 * erased on request is not looked up: its rows are skipped.
 */
export async function changesToLookUp(
  tasks: readonly ApplyTask[],
  state: SyncStateStore,
  dryRun: boolean,
  erasures?: ErasureLookup,
): Promise<IdentityChange[]> {
  const customers = new Set<string>();
  const candidates = tasks.filter(
    (task) => dryRun || (!customers.has(task.externalId) && customers.add(task.externalId)),
  );
  const needed = await Promise.all(
    candidates.map(async ({ change }) => {
      const recorded = await state.getState(change.tenant, change.externalId);
      if (!needsLookups(change, recorded)) return [];
      const erased = await namesErasedCustomer(change, new Map([[change.externalId, recorded]]), erasures);
      return erased ? [] : [change];
    }),
  );
  return needed.flat();
}

/** What a dry run's row would come to, one of APPLY_DRY_RUN_OUTCOMES. */
export function dryRunOutcomeOf(plan: SyncPlan): (typeof APPLY_DRY_RUN_OUTCOMES)[number] {
  switch (plan.action) {
    case 'skip':
      return plan.reason === Reason.Unchanged ? 'unchanged' : 'would-skip';
    case 'patch':
      return plan.bind ? 'would-bind' : 'would-patch';
    case 'create':
      return 'would-create';
    case 'merge-then-patch':
      return 'would-merge';
    case 'swap':
      return 'would-swap';
    case 'retry':
    case 'park':
      return 'would-park';
  }
}

/** What a dry run would have done, for the results file. */
export function describePlan(plan: SyncPlan): string {
  switch (plan.action) {
    case 'skip':
      return `would skip: ${plan.reason}`;
    case 'patch':
      return `would patch profile ${plan.profileId}: ${Object.keys(plan.attributes).join(', ')}`;
    case 'create':
      return `would create a profile with ${Object.keys(plan.attributes).join(', ')}`;
    case 'merge-then-patch':
      return `would merge profile ${plan.sourceId} into ${plan.profileId}, then patch it`;
    case 'swap':
      return `would trade identifiers with customer ${plan.holderExternalId} (profile ${plan.holderId})`;
    case 'retry':
    case 'park':
      return `would park: ${plan.reason} (profile ${plan.holderId})`;
  }
}
