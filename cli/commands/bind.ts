import { KlaviyoApiError } from '../../lib/klaviyo/errors.js';
import type { KlaviyoProfile } from '../../lib/ports.js';
import { BATCH_OPTIONS_HELP, type BatchCommand, batchCommandLine } from '../batch.js';
import { conflictOnBind, decideBind } from '../bind-decision.js';
import { type BindChunk, bindChunk, lookUpForBind } from '../bind-lookups.js';
import { BIND_OUTCOMES } from '../results.js';
import { type BindTask, bindTaskOf, REQUIRED_COLUMNS } from '../rows.js';
import type { Session } from '../session.js';

const USAGE = `Usage: identity-sync bind <file> [options]

Backfills external_id from a Shopify customer export: for each customer, finds the Klaviyo
profile by email, then by phone (for many rows at once: see Requests below), and when that
profile has no external_id yet, sets it to the customer's id. Never creates or merges profiles
and never changes an email or phone. Outcomes: bound, unchanged (already bound to this
customer), conflict (bound to another customer, or found first by another row of the file),
not-found.
<file> is Shopify's export (columns Customer ID, Email, Phone; others are ignored) or any CSV
or NDJSON with id, email, phone.

${BATCH_OPTIONS_HELP}`;

const bindCommand: BatchCommand<BindTask, BindChunk> = {
  name: 'bind',
  outcomes: BIND_OUTCOMES,
  requiredColumns: REQUIRED_COLUMNS.bind,
  taskOf: bindTaskOf,
  lookUp: async (tasks, session) => bindChunk(await lookUpForBind(session.klaviyo, tasks)),
  async run(task, session, dryRun, lookups) {
    const chunk = lookups ?? bindChunk(await lookUpForBind(session.klaviyo, [task]));
    const decision = decideBind(task.externalId, chunk.found(task));
    if (!('patch' in decision)) return decision;
    const { patch: profile, reason } = decision;
    const profileId = profile.id;
    chunk.claim(profileId, task.externalId);
    if (dryRun) return { outcome: 'planned', profileId, reason: `would set external_id (${reason})` };
    try {
      await session.klaviyo.updateProfile(profileId, { external_id: task.externalId });
    } catch (error) {
      chunk.release(profileId);
      const holderId =
        error instanceof KlaviyoApiError && error.status === 409 ? error.duplicateProfileId : undefined;
      if (holderId) return conflictOnBind(task.externalId, profileId, holderId);
      throw error;
    }
    await recordBound(session, task, profile, reason);
    return { outcome: 'bound', profileId, reason };
  },
};

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
    before: { email: before.email, phone_number: before.phone_number, external_id: before.external_id },
    after: { external_id: task.externalId },
    occurredAt: now,
    decidedAt: now,
  });
}
