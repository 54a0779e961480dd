import { setTimeout as sleep } from 'node:timers/promises';
import {
  MAX_BULK_IMPORT_BYTES,
  MAX_BULK_IMPORT_PROFILES,
  profileIndexOf,
} from '../lib/klaviyo/bulk-import.js';
import { KlaviyoApiError } from '../lib/klaviyo/errors.js';
import type { BulkImportError, BulkImportJob, BulkImportProfile, KlaviyoBulkImports } from '../lib/ports.js';
import type { BulkEntry, JobsJournal, JournalJob } from './bulk-journal.js';

export type { BulkEntry } from './bulk-journal.js';

/**
 * Writes whose outcome is known in advance, sent through Klaviyo's bulk profile import jobs: up to
 * 10,000 profiles (and under 5 MB) a job, a few jobs at once, each polled until Klaviyo is done
 * with it; then its import errors are read and each is mapped back to its row, by the pointer
 * that names the profile in the job (else by the profile as sent).
 *
 * Every job started is written to a journal file beside the results, with its rows, before it is
 * polled, and marked settled once its rows' results are written: a run that stops with a job in
 * flight leaves it there, and the rerun polls that job instead of starting it again.
 */

/** What became of one row of a job: its result, or `again` to run it through the per-profile path. */
export type Settled<Result> = Result | 'again';

export interface BulkJobsOptions<Planned, Result> {
  klaviyo: KlaviyoBulkImports;
  journal: JobsJournal<Planned>;
  /** The rows of a finished job, each with its import error if it had one. */
  settle(
    jobId: string,
    done: { entry: BulkEntry<Planned>; error?: BulkImportError }[],
  ): Promise<Settled<Result>[]>;
  onSettled(entry: BulkEntry<Planned>, settled: Settled<Result>): void;
  /** Told whenever a job changes, for the progress line. */
  onChange?(): void;
  /** Told once when Klaviyo refuses bulk jobs (e.g. a key without the lists:write scope). */
  onRefused?(error: Error): void;
  /** Aborted: polling stops, leaving the jobs in the journal. */
  signal: AbortSignal;
  maxJobsAtOnce?: number;
  firstPollMs?: number;
  maxPollMs?: number;
}

export interface BulkJobs<Planned> {
  /** Adds a row's write; false when bulk jobs are refused, so the row goes per profile instead. */
  add(entry: BulkEntry<Planned>): Promise<boolean>;
  /** Starts a job with the writes added since the last one. */
  flush(): Promise<void>;
  /** Polls and settles a job an earlier run started. */
  resume(job: JournalJob<Planned>): void;
  /** Resolves when every job started is settled or given up (see `unsettled`). */
  drain(): Promise<void>;
  /** The jobs so far: their status, and the rows they hold and have settled. */
  status(): BulkStatus;
}

export interface BulkStatus {
  /** Each job as last read from Klaviyo. */
  jobs: Map<string, BulkImportJob>;
  /** Profiles sent in jobs (or waiting on jobs an earlier run started). */
  profiles: number;
  settled: number;
  importErrors: number;
  /** Jobs whose polling failed: their rows have no result yet, and the journal keeps them. */
  unsettled: { id: string; rows: number; problem: string }[];
}

const DEFAULT_MAX_JOBS_AT_ONCE = 3;
/** Headroom under the 5 MB limit for the job's own envelope. */
const BODY_BUDGET = MAX_BULK_IMPORT_BYTES - 64 * 1024;
/** `{"type":"profile",…}` around each profile's attributes, and the comma between them. */
const ITEM_OVERHEAD = 32;

export function createBulkJobs<Planned, Result>(
  options: BulkJobsOptions<Planned, Result>,
): BulkJobs<Planned> {
  const maxJobsAtOnce = options.maxJobsAtOnce ?? DEFAULT_MAX_JOBS_AT_ONCE;
  const status: BulkStatus = { jobs: new Map(), profiles: 0, settled: 0, importErrors: 0, unsettled: [] };
  const running = new Set<Promise<void>>();
  let buffer: BulkEntry<Planned>[] = [];
  let bufferBytes = 0;
  let refused = false;

  /** An unexpected failure of a job's work (writing the journal, say): drain() throws it. */
  let failure: unknown;
  const track = (work: Promise<void>) => {
    running.add(work);
    work.then(
      () => running.delete(work),
      (error) => {
        failure ??= error;
        running.delete(work);
      },
    );
  };

  const settleAll = (entries: BulkEntry<Planned>[], settled: Settled<Result>[]) => {
    entries.forEach((entry, i) => {
      status.settled++;
      options.onSettled(entry, settled[i] ?? 'again');
    });
    options.onChange?.();
  };

  /**
   * Polls a job until Klaviyo is done with it (waiting first when `job`, as just started, says it
   * is queued), then settles its rows.
   */
  async function follow(jobId: string, entries: BulkEntry<Planned>[], started?: BulkImportJob) {
    let job = started;
    try {
      for (
        let pause = options.firstPollMs ?? 1_000;
        !isOver(job);
        pause = Math.min(pause * 2, options.maxPollMs ?? 10_000)
      ) {
        if (job) await sleep(pause, undefined, { signal: options.signal });
        job = await options.klaviyo.getBulkImport(jobId);
        status.jobs.set(jobId, job);
        options.onChange?.();
      }
      // A cancelled job may have imported some of its profiles: those rows are looked at afresh.
      if (job?.status !== 'complete')
        return settleAll(
          entries,
          entries.map(() => 'again'),
        );
      const errors = job.failed > 0 ? await importErrorsOf(options.klaviyo, jobId) : [];
      status.importErrors += errors.length;
      const { byEntry, unmapped } = mapErrors(errors, entries);
      // Errors that name no row: which rows failed is unknown, so those without a known error go again.
      const settled = await options.settle(
        jobId,
        entries.map((entry, i) => ({ entry, error: byEntry[i] })),
      );
      await settleAll(
        entries,
        settled.map((result, i) => (unmapped > 0 && !byEntry[i] ? 'again' : result)),
      );
      await options.journal.settled(jobId);
    } catch (error) {
      if (options.signal.aborted) return;
      status.unsettled.push({ id: jobId, rows: entries.length, problem: (error as Error).message });
      options.onChange?.();
    }
  }

  async function start(entries: BulkEntry<Planned>[]) {
    let job: BulkImportJob;
    try {
      job = await options.klaviyo.startBulkImport(entries.map((entry) => entry.profile));
    } catch (error) {
      // 403: the key may not start bulk jobs (they need lists:write); a 4xx: this job is refused.
      if (error instanceof KlaviyoApiError && error.status === 403 && !refused) {
        refused = true;
        options.onRefused?.(error);
      }
      return settleAll(
        entries,
        entries.map(() => 'again'),
      );
    }
    await options.journal.started(job.id, entries);
    status.jobs.set(job.id, job);
    status.profiles += entries.length;
    options.onChange?.();
    await follow(job.id, entries, job);
  }

  async function flush() {
    if (buffer.length === 0) return;
    const entries = buffer;
    buffer = [];
    bufferBytes = 0;
    // A few jobs at once: Klaviyo's bulk limits (10/s, 150/min) are shared by starts and polls.
    while (running.size >= maxJobsAtOnce)
      await Promise.race([...running].map((work) => work.catch(() => {})));
    if (options.signal.aborted) return;
    track(start(entries));
  }

  return {
    async add(entry) {
      if (refused) return false;
      const bytes = Buffer.byteLength(JSON.stringify(entry.profile)) + ITEM_OVERHEAD;
      if (bufferBytes + bytes > BODY_BUDGET) await flush();
      buffer.push(entry);
      bufferBytes += bytes;
      if (buffer.length >= MAX_BULK_IMPORT_PROFILES) await flush();
      return true;
    },
    flush,
    resume({ id, entries }) {
      status.jobs.set(id, { id, status: 'queued', total: entries.length, completed: 0, failed: 0 });
      status.profiles += entries.length;
      track(follow(id, entries));
    },
    async drain() {
      while (running.size > 0) await Promise.allSettled(running);
      if (failure !== undefined) throw failure;
    },
    status: () => status,
  };
}

const isOver = (job: BulkImportJob | undefined) => job?.status === 'complete' || job?.status === 'cancelled';

/** Every import error of a job, page by page (100 a page). */
async function importErrorsOf(klaviyo: KlaviyoBulkImports, jobId: string): Promise<BulkImportError[]> {
  const errors: BulkImportError[] = [];
  let cursor: string | undefined;
  do {
    const page = await klaviyo.bulkImportErrors(jobId, cursor);
    errors.push(...page.errors);
    cursor = page.next;
  } while (cursor);
  return errors;
}

/**
 * Each import error's row: the profile its pointer names, else the one sent as its original
 * payload; `unmapped` counts the errors that name none.
 */
export function mapErrors<Planned>(errors: BulkImportError[], entries: BulkEntry<Planned>[]) {
  const byEntry: (BulkImportError | undefined)[] = entries.map(() => undefined);
  const sent = entries.map((entry) => JSON.stringify(asSent(entry.profile)));
  let unmapped = 0;
  for (const error of errors) {
    const pointed = profileIndexOf(error.pointer);
    const index =
      pointed !== undefined && pointed < entries.length
        ? pointed
        : error.originalPayload === undefined
          ? -1
          : sent.indexOf(JSON.stringify(asSent(error.originalPayload as BulkImportProfile)));
    // A profile may fail on more than one field: its first error stands for it.
    if (index >= 0) byEntry[index] ??= error;
    else unmapped++;
  }
  return { byEntry, unmapped };
}

/** A profile as compared with an original payload: its id and identifiers, in a fixed order. */
const asSent = (profile: Partial<BulkImportProfile> | null | undefined) => {
  const attributes = profile?.attributes ?? {};
  return [
    profile?.id ?? null,
    attributes.email ?? null,
    attributes.phone_number ?? null,
    attributes.external_id ?? null,
  ];
};
