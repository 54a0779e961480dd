import { planBind, settleBind } from '../../lib/bind/plan-bind.js';
import { KlaviyoApiError } from '../../lib/klaviyo/errors.js';
import type { BulkImportError, BulkImportProfile, KlaviyoProfile } from '../../lib/ports.js';
import { ERASED_CUSTOMER_SKIP, isCustomerErased } from '../../lib/sync/handle-compliance.js';
import { auditedIdentifiers } from '../../lib/sync/record-decision.js';
import { BATCH_OPTIONS_HELP, type BatchCommand, type RowOutcome } from '../batch.js';
import { type BindChunk, bindChunk, lookUpForBind } from '../bind-lookups.js';
import type { Settled } from '../bulk-jobs.js';
import { BIND_DRY_RUN_OUTCOMES, BIND_OUTCOMES } from '../results.js';
import { type BindTask, bindTaskOf, REQUIRED_COLUMNS } from '../rows.js';
import { batchCommandLine } from '../run-batch.js';
import { mapConcurrently } from '../run-in-order.js';
import type { Session } from '../session.js';

const USAGE = `Usage: identity-sync bind <file> [options]

Backfills external_id from a Shopify customer export: for each customer, finds the Klaviyo
profile by email, then by phone (for many rows at once: see Requests below), and when that
profile has no external_id yet, sets it to the customer's id (in large files through bulk import
jobs: see Bulk below). Never creates or merges profiles and never changes an email or phone.
Outcomes: bound, unchanged (already bound to this customer), conflict (bound to another
customer, found first by another row of the file, or the customer's id already on another
profile), not-found, skipped (the customer was erased on request: with SYNC_STATE_TABLE, the
worker's erasure records are read, and such a row is neither looked up nor bound).
<file> is Shopify's export (columns Customer ID, Email, Phone; others are ignored) or any CSV
or NDJSON with id, email, phone.

${BATCH_OPTIONS_HELP}`;

/** What settling a bulk-bound row needs: the profile as found, and how it was found. */
interface BindPlanned {
  profile: KlaviyoProfile;
  reason: string;
}

/**
 * One run of bind. Profiles it binds are claimed for the whole run, so a row looked up while a
 * bulk job is still binding a profile sees it taken. Customers erased on request are found before
 * the lookups and kept out of them.
 */
function bindCommand(): BatchCommand<BindTask, BindChunk> {
  const claims = new Map<string, string>();
  const erased = new Set<string>();
  const lookUp = async (session: Session, tasks: readonly BindTask[]) =>
    bindChunk(await lookUpForBind(session.klaviyo, await withoutErased(session, tasks, erased)), claims);
  return {
    name: 'bind',
    outcomes: BIND_OUTCOMES,
    dryRunOutcomes: BIND_DRY_RUN_OUTCOMES,
    requiredColumns: REQUIRED_COLUMNS.bind,
    taskOf: bindTaskOf,
    lookUp: (tasks, session) => lookUp(session, tasks),
    async run(task, session, dryRun, lookups) {
      const chunk = lookups ?? (await lookUp(session, [task]));
      if (erased.has(task.externalId)) return { outcome: 'skipped', reason: ERASED_CUSTOMER_SKIP.reason };
      const plan = planBind(task.externalId, chunk.found(task));
      if (!('patch' in plan)) return plan;
      const profileId = plan.patch.id;
      chunk.claim(profileId, task.externalId);
      if (dryRun) return settleBind(task.externalId, plan, { kind: 'dry-run' });
      try {
        await session.klaviyo.updateProfile(profileId, { external_id: task.externalId });
      } catch (error) {
        chunk.release(profileId);
        const holderId =
          error instanceof KlaviyoApiError && error.status === 409 ? error.duplicateProfileId : undefined;
        if (holderId) return settleBind(task.externalId, plan, { kind: 'held', holderId });
        throw error;
      }
      await recordBound(session, task, plan.patch, plan.reason);
      return settleBind(task.externalId, plan, { kind: 'written' });
    },
    bulk: {
      keysOf: (task) => [
        `id:${task.externalId}`,
        ...(task.email ? [`email:${task.email.toLowerCase()}`] : []),
        ...(task.phoneNumber ? [`phone:${task.phoneNumber}`] : []),
      ],
      // A profile found without external_id: the job sets it, by the profile's id, and nothing else.
      async plan(
        task,
        _session,
        chunk,
      ): Promise<{ planned: BindPlanned; profile: BulkImportProfile } | undefined> {
        if (erased.has(task.externalId)) return undefined;
        const plan = planBind(task.externalId, chunk.found(task));
        if (!('patch' in plan)) return undefined;
        chunk.claim(plan.patch.id, task.externalId);
        return {
          planned: { profile: plan.patch, reason: plan.reason },
          profile: { id: plan.patch.id, attributes: { external_id: task.externalId } },
        };
      },
      settle: (jobId, done, session) =>
        mapConcurrently(done, SETTLE_CONCURRENCY, (row) => settleBound(jobId, row, session)),
    },
  };
}

/** Audit writes at once while a job's rows are settled. */
const SETTLE_CONCURRENCY = 16;

/** Erasure records read at once before a chunk's lookups. */
const ERASURE_READS_AT_ONCE = 16;

/** The rows whose customers were not erased on request; those that were join `erased`. */
async function withoutErased(
  session: Session,
  tasks: readonly BindTask[],
  erased: Set<string>,
): Promise<readonly BindTask[]> {
  const { erasures } = session;
  if (!erasures) return tasks;
  const found = await mapConcurrently(tasks, ERASURE_READS_AT_ONCE, (task) =>
    isCustomerErased(session.tenant, task.externalId, erasures),
  );
  for (const [index, task] of tasks.entries()) if (found[index]) erased.add(task.externalId);
  return tasks.filter((task) => !erased.has(task.externalId));
}

/** A row a bulk job bound (recorded in the audit trail), or why it did not. */
async function settleBound(
  jobId: string,
  { task, planned, error }: { task: BindTask; planned: BindPlanned; error?: BulkImportError },
  session: Session,
): Promise<Settled<RowOutcome>> {
  const plan = { patch: planned.profile, reason: planned.reason };
  if (!error) await recordBound(session, task, planned.profile, planned.reason);
  return settleBind(
    task.externalId,
    plan,
    error ? { kind: 'import-error', jobId, error } : { kind: 'written' },
  );
}

/** `identity-sync bind <file>`: sets external_id on profiles Klaviyo knows by email or phone only. */
export const bind = batchCommandLine(USAGE, bindCommand);

/** In the same audit trail as the worker's decisions, so `history` shows who bound the profile. */
async function recordBound(session: Session, task: BindTask, before: KlaviyoProfile, reason: string) {
  const now = new Date().toISOString();
  await session.audit.record({
    tenant: session.tenant,
    externalId: task.externalId,
    sourceEventId: task.sourceEventId,
    outcome: 'bound',
    plan: 'bind',
    reason,
    profileIds: [before.id],
    before: auditedIdentifiers(session.identifierKey, {
      email: before.email,
      phone_number: before.phone_number,
      external_id: before.external_id,
    }),
    after: { external_id: task.externalId },
    keyId: session.identifierKey.id,
    occurredAt: now,
    decidedAt: now,
  });
}
