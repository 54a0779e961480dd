import { randomUUID } from 'node:crypto';
import { isPlainObject, parseAttributes, requireIdentifier } from './attributes.js';
import { ApiError, duplicateProfile } from './errors.js';
import { generateProfileId, type ProfileStore } from './store.js';
import type { BulkImportJobState, ImportErrorRecord, ProfileChanges } from './types.js';

interface QueuedJob extends BulkImportJobState {
  items: readonly unknown[];
  timers: ReturnType<typeof setTimeout>[];
}

/** The largest profile a job takes, as Klaviyo documents it; a larger one is an import error. */
const MAX_PROFILE_BYTES = 100 * 1024;

/**
 * Accepted `POST /api/profile-bulk-import-jobs`, carried out asynchronously as Klaviyo does: a job
 * is `queued`, then `processing` after half of `delayMs` of real time, then every profile is
 * imported at once and it is `complete` after `delayMs` (never by itself with `Infinity`), or at
 * once through `settle()`. Timers are unref'd so they never keep the process alive.
 *
 * Each profile is imported as `POST /api/profile-import` would (matched by `id`, else by its
 * identifiers, email first), except that null never clears a field (Klaviyo's bulk import cannot
 * set null) and an external_id a matched profile already has is never replaced. A profile that
 * fails becomes an import error naming it by `source.pointer`, with `original_payload`: invalid
 * values (`invalid`), an unknown `id` (`not_found`), an identifier conflict (`duplicate_profile`):
 * an identifier held by another profile, or a matched profile bound to another external_id. How
 * Klaviyo reports conflicts in a job is unconfirmed; the sandbox uses the code its other endpoints
 * answer 409 with. Counts: completed + failed = total.
 */
export class BulkImportQueue {
  readonly #store: ProfileStore;
  readonly #delayMs: number;
  readonly #clock: () => number;
  readonly #jobs = new Map<string, QueuedJob>();
  #closed = false;

  constructor(store: ProfileStore, delayMs: number, clock: () => number) {
    if (!(delayMs >= 0)) throw new RangeError(`bulkImportDelayMs must be ≥ 0 (or Infinity), got ${delayMs}.`);
    this.#store = store;
    this.#delayMs = delayMs;
    this.#clock = clock;
  }

  create(items: readonly unknown[], createdAt: number): BulkImportJobState {
    const job: QueuedJob = {
      id: generateProfileId(createdAt),
      status: 'queued',
      createdAt,
      total: items.length,
      completed: 0,
      failed: 0,
      errors: [],
      profileIds: [],
      items,
      timers: [],
    };
    if (!this.#closed && Number.isFinite(this.#delayMs)) {
      job.timers.push(
        setTimeout(() => this.#start(job), this.#delayMs / 2).unref(),
        setTimeout(() => this.#run(job), this.#delayMs).unref(),
      );
    }
    this.#jobs.set(job.id, job);
    return stateOf(job);
  }

  get(id: string): BulkImportJobState | undefined {
    const job = this.#jobs.get(id);
    return job && stateOf(job);
  }

  /** Every job, oldest first. */
  list(): BulkImportJobState[] {
    return [...this.#jobs.values()].map(stateOf);
  }

  /** Carries out every job not complete yet, oldest first; returns how many. */
  settle(): number {
    const pending = [...this.#jobs.values()].filter(
      (job) => job.status === 'queued' || job.status === 'processing',
    );
    for (const job of pending) this.#run(job);
    return pending.length;
  }

  /** Drops every job. */
  clear(): void {
    for (const job of this.#jobs.values()) for (const timer of job.timers) clearTimeout(timer);
    this.#jobs.clear();
  }

  /** Drops jobs and stops scheduling new ones. */
  close(): void {
    this.#closed = true;
    this.clear();
  }

  #start(job: QueuedJob): void {
    if (job.status !== 'queued') return;
    job.status = 'processing';
    job.startedAt = this.#clock();
  }

  #run(job: QueuedJob): void {
    if (job.status === 'complete') return;
    for (const timer of job.timers) clearTimeout(timer);
    this.#start(job);
    job.items.forEach((item, index) => {
      const imported = this.#importOne(item, `/data/attributes/profiles/data/${index}`);
      if ('error' in imported) job.errors.push(imported.error);
      else job.profileIds.push(imported.profileId);
    });
    job.failed = job.errors.length;
    job.completed = job.total - job.failed;
    job.status = 'complete';
    job.completedAt = this.#clock();
  }

  #importOne(item: unknown, pointer: string): { profileId: string } | { error: ImportErrorRecord } {
    try {
      return { profileId: importProfile(this.#store, item) };
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      // Errors about the item's own fields point into the job's body (`/data/…` → the item's path).
      const own = error.extras.source?.pointer?.replace(/^\/data(?=\/|$)/, pointer);
      return {
        error: {
          id: randomUUID(),
          code: error.code,
          title: error.title,
          detail: error.detail,
          source: { pointer: own ?? pointer },
          original_payload: isPlainObject(item) ? item : null,
        },
      };
    }
  }
}

/** Imports one profile of a job; throws an ApiError, pointing into the item as `/data/…`, when it fails. */
function importProfile(store: ProfileStore, item: unknown): string {
  if (!isPlainObject(item)) throw itemError('/data', 'A profile must be an object.');
  if (JSON.stringify(item).length > MAX_PROFILE_BYTES)
    throw itemError('/data', `A profile must be at most ${MAX_PROFILE_BYTES} bytes.`);
  const { type, id, attributes, meta } = item;
  if (type !== 'profile') throw itemError('/data/type', "'type' must be 'profile'.");
  if (meta !== undefined && meta !== null)
    throw itemError('/data/meta', "'meta' is not supported by the sandbox's bulk import.");
  if (id !== undefined && id !== null && typeof id !== 'string')
    throw itemError('/data/id', "'id' must be a string.");
  const changes = withoutNulls(parseAttributes(attributes));
  const target =
    typeof id === 'string'
      ? (store.get(id) ??
        throwError(
          new ApiError(404, 'not_found', 'Not found.', `A profile with id '${id}' does not exist.`, {
            source: { pointer: '/data/id' },
          }),
        ))
      : store.holderOf(changes);
  if (!target) {
    requireIdentifier(changes);
    return store.create(changes).id;
  }
  // Never another customer's profile: an external_id it has already is not replaced.
  const externalId = changes.external_id;
  if (typeof externalId === 'string' && target.external_id !== null && target.external_id !== externalId)
    throw duplicateProfile(target.id);
  return store.update(target.id, changes).id;
}

function throwError(error: ApiError): never {
  throw error;
}

const itemError = (pointer: string, detail: string) =>
  new ApiError(400, 'invalid', 'Invalid input.', detail, { source: { pointer } });

/** Klaviyo's bulk import cannot set a field to null: a null leaves the field as it is. */
function withoutNulls(changes: ProfileChanges): ProfileChanges {
  return Object.fromEntries(Object.entries(changes).filter(([, value]) => value !== null));
}

const stateOf = ({ items: _items, timers: _timers, ...job }: QueuedJob): BulkImportJobState =>
  structuredClone(job);
