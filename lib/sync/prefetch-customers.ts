import { type QueuedMessage, queuedChangeIn } from '../dead-letter.js';
import { type IdentityChange, isIdentityChange } from '../identity-change.js';
import type { CustomerState, KlaviyoForTenant, KlaviyoProfiles, SyncStateStore } from '../ports.js';
import { withBatchedLookups } from './batched-lookups.js';
import type { WorkerDependencies } from './handle-message.js';
import { needsLookups } from './needs-lookups.js';

/** A queued record as the prefetch reads it: its group, and what its body says. */
interface ReadRecord {
  groupId: string;
  content: QueuedMessage;
}

/**
 * The worker's dependencies for one batch: its Klaviyo clients already know the answers to the
 * lookups the batch's unknown customers need, and its state store answers each customer's first
 * read from what the prefetch read (prefetchUnknownCustomers, withStatesRead).
 */
export async function withCustomersPrefetched(
  records: readonly ReadRecord[],
  deps: WorkerDependencies,
): Promise<WorkerDependencies> {
  const { prefetched, statesRead } = await prefetchUnknownCustomers(records, deps);
  const klaviyoFor: KlaviyoForTenant = async (tenant, clientOptions) =>
    (!clientOptions?.fresh && prefetched.get(tenant)) || deps.klaviyoFor(tenant, clientOptions);
  return { ...deps, klaviyoFor, state: withStatesRead(deps.state, statesRead) };
}

/**
 * Per tenant, a Klaviyo client that already knows the answers to the lookups the batch's unknown
 * customers need. Only the first change of each group is looked at: the ones after it find the
 * record its change leaves. A failure here costs nothing but the saving: each change then looks
 * its customer up on its own, with its own retries. The customers' states it read are handed on
 * (see withStatesRead).
 */
async function prefetchUnknownCustomers(
  records: readonly ReadRecord[],
  deps: WorkerDependencies,
): Promise<{ prefetched: Map<string, KlaviyoProfiles>; statesRead: Map<string, CustomerState> }> {
  const statesRead = new Map<string, CustomerState>();
  const groups = new Set<string>();
  const firstChanges = records
    .filter((record) => !groups.has(record.groupId) && groups.add(record.groupId))
    .map((record) => identityChangeIn(record.content))
    .filter((change): change is IdentityChange => change !== undefined);
  const unknown = (
    await Promise.all(
      firstChanges.map(async (change) => {
        const state = await deps.state.getState(change.tenant, change.externalId).catch(() => undefined);
        if (state) statesRead.set(stateKey(change.tenant, change.externalId), state);
        return state !== undefined && needsLookups(change, state) ? [change] : [];
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
  return { prefetched, statesRead };
}

const stateKey = (tenant: string, externalId: string) => `${tenant}\n${externalId}`;

/**
 * The state store, answering each customer's first read from what the prefetch read a moment
 * before (its group's first change asks for it at once), so the hot path reads it once. An
 * answer is given once, and dropped when the customer's state is written meanwhile.
 */
function withStatesRead(store: SyncStateStore, statesRead: Map<string, CustomerState>): SyncStateStore {
  const take = (tenant: string, externalId: string) => {
    const state = statesRead.get(stateKey(tenant, externalId));
    statesRead.delete(stateKey(tenant, externalId));
    return state;
  };
  return {
    getState: async (tenant, externalId) => take(tenant, externalId) ?? store.getState(tenant, externalId),
    recordApplied: (change) => {
      take(change.tenant, change.externalId);
      return store.recordApplied(change);
    },
    recordPending: (tenant, externalId, pending) => {
      take(tenant, externalId);
      return store.recordPending(tenant, externalId, pending);
    },
    recordMerged: (merged) => {
      take(merged.tenant, merged.externalId);
      return store.recordMerged(merged);
    },
    forgetProfile: (tenant, externalId) => {
      take(tenant, externalId);
      return store.forgetProfile(tenant, externalId);
    },
  };
}

/** The identity change a message carries (itself or in a parked letter), if it is one. */
function identityChangeIn(message: QueuedMessage): IdentityChange | undefined {
  const read = queuedChangeIn(message);
  return 'queued' in read && isIdentityChange(read.queued) ? read.queued : undefined;
}
