import { appendFile, readFile, rm } from 'node:fs/promises';
import type { BulkImportProfile } from '../lib/ports.js';
import { completeLines } from './ndjson.js';

/** A row's write in a bulk import job, as the journal keeps it. */
export interface BulkEntry<Planned> {
  line: number;
  /** The row's key (rowKeyOf), so a rerun can tell it is still the same row. */
  row: string;
  /** What the command needs to settle the row once the job is done: plain JSON. */
  planned: Planned;
  profile: BulkImportProfile;
}

/** A job an earlier run started, with its rows. */
export interface JournalJob<Planned> {
  id: string;
  entries: BulkEntry<Planned>[];
}

/**
 * The jobs file (NDJSON beside the results): `{"job":id,"entries":[…]}` when a job is started,
 * `{"job":id,"settled":true}` once its rows' results are written.
 */
export interface JobsJournal<Planned> {
  /** Jobs started and not settled by earlier runs. */
  readonly unsettled: JournalJob<Planned>[];
  started(id: string, entries: BulkEntry<Planned>[]): Promise<void>;
  settled(id: string): Promise<void>;
  /** Removes the file: for a run that settled everything. */
  remove(): Promise<void>;
}

export async function openJobsJournal<Planned>(path: string, resume: boolean): Promise<JobsJournal<Planned>> {
  const started = new Map<string, BulkEntry<Planned>[]>();
  const text = resume ? await readFile(path, 'utf8').catch(() => '') : '';
  for (const line of completeLines(text)) {
    // A line that is no JSON names no job to follow.
    const record = line as { job: string; entries?: BulkEntry<Planned>[]; settled?: boolean } | undefined;
    if (record?.settled) started.delete(record.job);
    else if (record?.entries) started.set(record.job, record.entries);
  }
  if (!resume) await rm(path, { force: true });
  // One append at a time: two jobs' lines written at once could interleave (a line can be megabytes).
  let last: Promise<void> = Promise.resolve();
  const append = (record: unknown) => {
    last = last.then(() => appendFile(path, `${JSON.stringify(record)}\n`));
    return last;
  };
  return {
    unsettled: [...started].map(([id, entries]) => ({ id, entries })),
    started: (id, entries) => append({ job: id, entries }),
    settled: (id) => append({ job: id, settled: true }),
    remove: () => rm(path, { force: true }),
  };
}
