import { readQueuedMessage } from '../dead-letter.js';
import { TransientError } from '../errors.js';
import type { IdentityChange } from '../identity-change.js';
import type { KlaviyoForTenant, KlaviyoProfiles } from '../ports.js';
import { withBatchedLookups } from './batched-lookups.js';
import { isStale, recordedProfile } from './plan.js';
import { processQueuedChange, type WorkerDependencies } from './process-queued-change.js';
import { runInGroups } from './run-in-groups.js';

/** One message of a batch as the queue delivered it, with no AWS types. */
export interface QueuedRecord {
  id: string;
  /** The FIFO message group: one customer of one tenant. */
  groupId: string;
  body: string;
  /** How many times the queue has delivered it (1 at first). */
  attempt: number;
}

export interface BatchOptions {
  /** Whether there is time to start another change in this invocation; if not, it goes back to the queue. */
  hasTimeForAnother?: () => boolean;
}

/**
 * Works through one batch of queued changes. First the lookups of every customer not yet known
 * (no record of its profile) are made together, a few `any(…)` queries per tenant instead of a
 * few per customer; then each customer's changes run in order while different customers run at
 * the same time. Returns the records that must come back: a failed one and the rest of its group.
 */
export async function processQueuedBatch(
  records: readonly QueuedRecord[],
  deps: WorkerDependencies,
  options: BatchOptions = {},
): Promise<{ failed: QueuedRecord[] }> {
  // No time for even one change: spend no request on lookups that would go unused.
  const prefetched =
    options.hasTimeForAnother?.() === false
      ? new Map<string, KlaviyoProfiles>()
      : await prefetchUnknownCustomers(records, deps);
  const klaviyoFor: KlaviyoForTenant = async (tenant, clientOptions) =>
    (!clientOptions?.fresh && prefetched.get(tenant)) || deps.klaviyoFor(tenant, clientOptions);
  const batchDeps = { ...deps, klaviyoFor };
  const { failed } = await runInGroups(records, async (record) => {
    if (options.hasTimeForAnother && !options.hasTimeForAnother()) {
      deps.telemetry.log.warn('Change handed back to the queue: too little time left in this invocation', {
        messageId: record.id,
      });
      throw new TransientError('out_of_time', 'too little time left in this invocation');
    }
    await processQueuedChange(record.body, batchDeps, { attempt: record.attempt });
  });
  return { failed };
}

/**
 * Per tenant, a Klaviyo client that already knows the answers to the lookups the batch's unknown
 * customers need. Only the first change of each group is looked at: the ones after it find the
 * record its change leaves. A failure here costs nothing but the saving: each change then looks
 * its customer up on its own, with its own retries.
 */
async function prefetchUnknownCustomers(
  records: readonly QueuedRecord[],
  deps: WorkerDependencies,
): Promise<Map<string, KlaviyoProfiles>> {
  const groups = new Set<string>();
  const firstChanges = records
    .filter((record) => !groups.has(record.groupId) && groups.add(record.groupId))
    .map((record) => changeIn(record.body))
    .filter((change): change is IdentityChange => change !== undefined);
  const unknown = (
    await Promise.all(
      firstChanges.map(async (change) => {
        const state = await deps.state.getState(change.tenant, change.externalId).catch(() => undefined);
        const needsLookups =
          state !== undefined &&
          !isStale(change.occurredAt, state.lastAppliedAt) &&
          recordedProfile(change, state) === undefined;
        return needsLookups ? [change] : [];
      }),
    )
  ).flat();

  const byTenant = new Map<string, IdentityChange[]>();
  for (const change of unknown) byTenant.set(change.tenant, [...(byTenant.get(change.tenant) ?? []), change]);
  const prefetched = new Map<string, KlaviyoProfiles>();
  await Promise.all(
    [...byTenant].map(async ([tenant, changes]) => {
      try {
        const klaviyo = withBatchedLookups(await deps.klaviyoFor(tenant));
        prefetched.set(tenant, klaviyo);
        await klaviyo.prefetch(changes);
      } catch (error) {
        deps.telemetry.log.warn('Batched lookups failed; each change looks its customer up itself', {
          tenant,
          customers: changes.length,
          error: error as Error,
        });
      }
    }),
  );
  return prefetched;
}

function changeIn(body: string): IdentityChange | undefined {
  const message = readQueuedMessage(body);
  if (message.kind === 'change') return message.change;
  return message.kind === 'letter' ? message.letter.change : undefined;
}
