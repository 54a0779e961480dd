import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import {
  type BulkEntry,
  type BulkJobsOptions,
  createBulkJobs,
  mapErrors,
  type Settled,
} from '../../cli/bulk-jobs.js';
import { openJobsJournal } from '../../cli/bulk-journal.js';
import type {
  BulkImportError,
  BulkImportJob,
  BulkImportProfile,
  KlaviyoBulkImports,
} from '../../lib/ports.js';
import { klaviyoError } from '../support/memory-klaviyo.js';
import { useTempDir } from '../support/temp-dir.js';

/** Removed after this file's tests, with every folder made in it. */
const tempDir = useTempDir('cli-bulk');

/**
 * Bulk import jobs as the CLI runs them, against Klaviyo's job endpoints in memory: how rows are
 * split into jobs, followed to their end, and how each import error comes back to its row.
 */
interface FakeJobs extends KlaviyoBulkImports {
  started: BulkImportProfile[][];
  /** What the next job started will end as, and with which errors. */
  next: { status?: BulkImportJob['status']; errors?: BulkImportError[] };
  failStart?: Error;
  failPoll?: Error;
}

function fakeJobs(): FakeJobs {
  const jobs = new Map<string, { job: BulkImportJob; errors: BulkImportError[]; polls: number }>();
  const fake: FakeJobs = {
    started: [],
    next: {},
    async startBulkImport(profiles) {
      if (fake.failStart) throw fake.failStart;
      fake.started.push(profiles);
      const id = `job-${fake.started.length}`;
      const errors = fake.next.errors ?? [];
      const failed = errors.length;
      const job = {
        id,
        status: fake.next.status ?? 'complete',
        total: profiles.length,
        completed: profiles.length - failed,
        failed,
      };
      jobs.set(id, { job, errors, polls: 0 });
      return { ...job, status: 'queued', completed: 0, failed: 0 };
    },
    async getBulkImport(id) {
      if (fake.failPoll) throw fake.failPoll;
      const known = jobs.get(id);
      if (!known) throw klaviyoError(404, 'not_found');
      // Queued at the first read, done at the second.
      return ++known.polls === 1
        ? { ...known.job, status: 'processing', completed: 0, failed: 0 }
        : known.job;
    },
    async bulkImportErrors(id, cursor) {
      const errors = jobs.get(id)?.errors ?? [];
      const start = Number(cursor ?? 0);
      const next = start + 2 < errors.length ? String(start + 2) : undefined;
      return { errors: errors.slice(start, start + 2), ...(next ? { next } : {}) };
    },
  };
  return fake;
}

const entryOf = (line: number): BulkEntry<{ line: number }> => ({
  line,
  row: `row-${line}`,
  planned: { line },
  profile: { id: `01P${line}`, attributes: { external_id: `c${line}` } },
});

const pointerTo = (index: number, field = 'external_id') =>
  `/data/attributes/profiles/data/${index}/attributes/${field}`;

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tempDir(), 'cli-bulk-'));
});

async function runJobs(
  klaviyo: FakeJobs,
  lines: number[],
  more: Partial<BulkJobsOptions<{ line: number }, string>> = {},
) {
  const journal = await openJobsJournal<{ line: number }>(join(dir, 'jobs'), true);
  const settled = new Map<number, Settled<string>>();
  const told: { jobId: string; errors: (string | undefined)[] }[] = [];
  const refused: string[] = [];
  const jobs = createBulkJobs<{ line: number }, string>({
    klaviyo,
    journal,
    signal: new AbortController().signal,
    firstPollMs: 1,
    async settle(jobId, done) {
      told.push({ jobId, errors: done.map(({ error }) => error?.code) });
      return done.map(({ entry, error }) =>
        error ? `failed ${entry.planned.line}` : `done ${entry.planned.line}`,
      );
    },
    onSettled: (entry, result) => settled.set(entry.line, result),
    onRefused: (error) => refused.push(error.message),
    ...more,
  });
  const accepted: boolean[] = [];
  for (const line of lines) accepted.push(await jobs.add(entryOf(line)));
  await jobs.flush();
  await jobs.drain();
  return { settled, told, refused, accepted, status: jobs.status(), journal: join(dir, 'jobs') };
}

describe('bulk import jobs', () => {
  it('sends up to 10,000 profiles a job, follows each to its end, and settles every row', async () => {
    const klaviyo = fakeJobs();
    const lines = Array.from({ length: 10_001 }, (_, i) => i + 2);

    const { settled, status, journal } = await runJobs(klaviyo, lines);

    expect(klaviyo.started.map((profiles) => profiles.length)).toEqual([10_000, 1]);
    expect(klaviyo.started[0]?.[0]).toEqual({ id: '01P2', attributes: { external_id: 'c2' } });
    expect(settled.size).toBe(10_001);
    expect(settled.get(10_002)).toBe('done 10002');
    expect(status).toMatchObject({ profiles: 10_001, settled: 10_001, importErrors: 0, unsettled: [] });
    expect([...status.jobs.values()].map((job) => job.status)).toEqual(['complete', 'complete']);
    // Each job started, then settled, in the journal.
    const records = (await readFile(journal, 'utf8'))
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(
      records
        .filter((record) => record.settled)
        .map((record) => record.job)
        .sort(),
    ).toEqual(['job-1', 'job-2']);
  });

  it('maps each import error to its row by pointer, reading every page of them', async () => {
    const klaviyo = fakeJobs();
    klaviyo.next.errors = [
      { code: 'duplicate_profile', detail: 'taken', pointer: '/data/attributes/profiles/data/1/attributes' },
      { code: 'invalid', detail: 'bad', pointer: pointerTo(3) },
      { code: 'invalid', detail: 'also bad', pointer: pointerTo(3, 'email') },
    ];

    const { settled, told, status } = await runJobs(klaviyo, [2, 3, 4, 5]);

    expect(told).toEqual([
      { jobId: 'job-1', errors: [undefined, 'duplicate_profile', undefined, 'invalid'] },
    ]);
    expect([...settled]).toEqual([
      [2, 'done 2'],
      [3, 'failed 3'],
      [4, 'done 4'],
      [5, 'failed 5'],
    ]);
    expect(status.importErrors).toBe(3);
  });

  it('sends every row without a known error back to be looked at afresh when an error names no row', async () => {
    const klaviyo = fakeJobs();
    klaviyo.next.errors = [
      {
        code: 'invalid',
        detail: 'bad',
        originalPayload: { type: 'profile', id: '01P3', attributes: { external_id: 'c3' } },
      },
      { code: 'error', detail: 'something, somewhere' },
    ];

    const { settled } = await runJobs(klaviyo, [2, 3, 4]);

    expect([...settled]).toEqual([
      [2, 'again'],
      [3, 'failed 3'],
      [4, 'again'],
    ]);
  });

  it('sends the rows of a cancelled job back to be looked at afresh', async () => {
    const klaviyo = fakeJobs();
    klaviyo.next.status = 'cancelled';
    const { settled, told } = await runJobs(klaviyo, [2, 3]);
    expect([...settled.values()]).toEqual(['again', 'again']);
    expect(told).toEqual([]);
  });

  it('when Klaviyo refuses bulk jobs (403), says so once and takes no more rows', async () => {
    const klaviyo = fakeJobs();
    klaviyo.failStart = klaviyoError(403, 'permission_denied', { method: 'POST' });
    const options = { maxJobsAtOnce: 1 };
    const journal = await openJobsJournal<{ line: number }>(join(dir, 'jobs'), true);
    const settled: Settled<string>[] = [];
    const refused: string[] = [];
    const jobs = createBulkJobs<{ line: number }, string>({
      klaviyo,
      journal,
      signal: new AbortController().signal,
      settle: async () => [],
      onSettled: (_entry, result) => settled.push(result),
      onRefused: (error) => refused.push(error.message),
      ...options,
    });

    expect(await jobs.add(entryOf(2))).toBe(true);
    await jobs.flush();
    await jobs.drain();
    expect(await jobs.add(entryOf(3))).toBe(false);
    expect(settled).toEqual(['again']);
    expect(refused).toHaveLength(1);
  });

  it('keeps a job it could not follow in the journal, its rows without a result', async () => {
    const klaviyo = fakeJobs();
    klaviyo.failPoll = new Error('Klaviyo did not answer');

    const { settled, status, journal } = await runJobs(klaviyo, [2, 3]);

    expect(settled.size).toBe(0);
    expect(status.unsettled).toEqual([{ id: 'job-1', rows: 2, problem: 'Klaviyo did not answer' }]);
    const reopened = await openJobsJournal<{ line: number }>(journal, true);
    expect(reopened.unsettled.map((job) => [job.id, job.entries.map((entry) => entry.line)])).toEqual([
      ['job-1', [2, 3]],
    ]);
  });
});

describe('the jobs journal', () => {
  it('lists the jobs started and not settled, skipping a torn last line; without resume it starts empty', async () => {
    const path = join(dir, 'journal');
    const entries = [entryOf(2)];
    await writeFile(
      path,
      `${JSON.stringify({ job: 'a', entries })}\n${JSON.stringify({ job: 'b', entries })}\n` +
        `${JSON.stringify({ job: 'a', settled: true })}\n{"job":"c","entr`,
    );
    expect((await openJobsJournal(path, true)).unsettled).toEqual([{ id: 'b', entries }]);
    expect((await openJobsJournal(path, false)).unsettled).toEqual([]);
    await expect(readFile(path, 'utf8')).rejects.toThrow(/ENOENT/);
  });
});

describe('mapErrors', () => {
  it('takes the first error of a profile that failed on several fields, and counts those it cannot place', () => {
    const entries = [entryOf(2), entryOf(3)];
    const { byEntry, unmapped } = mapErrors(
      [
        { code: 'invalid', detail: 'email', pointer: pointerTo(1, 'email') },
        { code: 'invalid', detail: 'phone', pointer: pointerTo(1, 'phone_number') },
        { code: 'invalid', detail: 'out of range', pointer: pointerTo(7) },
      ],
      entries,
    );
    expect(byEntry.map((error) => error?.detail)).toEqual([undefined, 'email']);
    expect(unmapped).toBe(1);
  });
});
