import { appendFile, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { apply } from '../../cli/commands/apply.js';
import { bind } from '../../cli/commands/bind.js';
import { type KlaviyoSandbox, SANDBOX_API_KEY, startKlaviyoSandbox } from '../../local/klaviyo-sandbox.js';
import { captureIo, resultsOf } from '../support/cli.js';
import { useTempDir } from '../support/temp-dir.js';

/** Removed after this file's tests, with every folder made in it. */
const tempDir = useTempDir('bulk');

/**
 * `bind` and `apply` through Klaviyo's bulk profile import jobs, against the Klaviyo sandbox in
 * this process (Klaviyo's limits; state in memory): which rows go in a job, how its import errors
 * come back to their rows, --no-bulk, and runs that stop and are run again.
 * `--bulk-min-rows 1` lets files of a few rows use jobs.
 */
let sandbox: KlaviyoSandbox;
/** Jobs run only when the test settles them. */
let held: KlaviyoSandbox;
let dir: string;
let serial = 0;

beforeAll(async () => {
  [sandbox, held] = await Promise.all([
    startKlaviyoSandbox({ bulkImportDelayMs: 20 }),
    startKlaviyoSandbox({ bulkImportDelayMs: Number.POSITIVE_INFINITY }),
  ]);
  dir = await mkdtemp(join(tempDir(), 'identity-sync-bulk-'));
});
afterAll(() => Promise.all([sandbox?.stop(), held?.stop()]));
beforeEach(() => {
  serial++;
  sandbox.clearRequests();
  held.clearRequests();
});

const name = (label: string) => `${label}.${serial}`;
const email = (label: string) => `${label}.${serial}@example.com`;
const phone = (n: number) => `+1415666${String(serial).padStart(2, '0')}${String(n).padStart(2, '0')}`;

async function inputFile(file: string, lines: string[]) {
  const path = join(dir, `${serial}-${file}`);
  await writeFile(path, `${lines.join('\n')}\n`);
  return path;
}

function run(
  command: typeof bind,
  file: string,
  {
    on = sandbox,
    args = [] as string[],
    signal,
  }: { on?: KlaviyoSandbox; args?: string[]; signal?: AbortSignal } = {},
) {
  const { io, written } = captureIo({ KLAVIYO_API_KEY: SANDBOX_API_KEY, KLAVIYO_BASE_URL: on.url });
  io.signal = signal;
  return command([file, ...args], io).then((exitCode) => ({ exitCode, ...written }));
}

/** Requests by endpoint, ids replaced, e.g. `POST /api/profile-bulk-import-jobs`. */
function requestsTo(on: KlaviyoSandbox, endpoint: string) {
  return on.requests.filter(
    (request) =>
      `${request.method} ${request.path
        .replace(/^(\/api\/profile-bulk-import-jobs)\/[^/]+/, '$1/{id}')
        .replace(/^\/api\/profiles\/[^/]+$/, '/api/profiles/{id}')}` === endpoint,
  );
}

/** Aborts once `condition` holds (checked every few milliseconds), as Ctrl-C would. */
function interruptWhen(condition: () => boolean) {
  const controller = new AbortController();
  const timer = setInterval(() => {
    if (!condition()) return;
    controller.abort();
    clearInterval(timer);
  }, 2);
  return { signal: controller.signal, stop: () => clearInterval(timer) };
}

const BULK = ['--bulk-min-rows', '1'];

describe('bind through bulk import jobs', () => {
  it("binds the profiles found without external_id in one job, and reports the job's import error on its row", async () => {
    const byEmail = [1, 2, 3].map((n) => sandbox.seedProfile({ email: email(`found${n}`) }));
    const byPhone = sandbox.seedProfile({ phone_number: phone(1) });
    const already = sandbox.seedProfile({ email: email('already'), external_id: name('already') });
    const others = sandbox.seedProfile({ email: email('others'), external_id: name('someone') });
    const holder = sandbox.seedProfile({ email: email('holder'), external_id: name('taken') });
    const unbound = sandbox.seedProfile({ email: email('unbound') });
    const shared = sandbox.seedProfile({ email: email('shared') });
    const file = await inputFile('customers.csv', [
      'Customer ID,Email,Phone',
      ...[1, 2, 3].map((n) => `${name(`found${n}`)},${email(`found${n}`)},`),
      `${name('by-phone')},,${phone(1)}`,
      `${name('already')},${email('already')},`,
      `${name('mine')},${email('others')},`,
      `${name('nobody')},${email('nobody')},`,
      // Its customer id is already another profile's: the job refuses this one profile.
      `${name('taken')},${email('unbound')},`,
      // Two customers with one email: never in a job, written one by one (the first binds).
      `${name('shared-a')},${email('shared')},`,
      `${name('shared-b')},${email('shared')},`,
    ]);

    const { exitCode, stdout, stderr } = await run(bind, file, { args: BULK });

    expect(exitCode).toBe(1);
    const results = await resultsOf(file);
    expect(results.map((result) => result.line)).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    expect(results.slice(0, 4)).toEqual([
      ...byEmail.map((profile, i) => ({
        line: i + 2,
        externalId: name(`found${i + 1}`),
        outcome: 'bound',
        reason: 'found by email',
        profileId: profile.id,
      })),
      {
        line: 5,
        externalId: name('by-phone'),
        outcome: 'bound',
        reason: 'found by phone',
        profileId: byPhone.id,
      },
    ]);
    expect(results.slice(4, 7).map((result) => result.outcome)).toEqual([
      'unchanged',
      'conflict',
      'not-found',
    ]);
    expect(results[7]).toEqual({
      line: 9,
      externalId: name('taken'),
      outcome: 'conflict',
      reason: expect.stringMatching(
        new RegExp(`^external_id ${name('taken')} is already on another profile \\(bulk import job \\w+: `),
      ),
      profileId: unbound.id,
    });
    expect(results.slice(8).map((result) => result.outcome)).toEqual(['bound', 'conflict']);

    for (const [i, profile] of byEmail.entries())
      expect(sandbox.getProfile(profile.id)?.external_id).toBe(name(`found${i + 1}`));
    expect(sandbox.getProfile(unbound.id)?.external_id).toBeNull();
    expect(sandbox.getProfile(holder.id)?.external_id).toBe(name('taken'));
    expect(sandbox.getProfile(others.id)?.external_id).toBe(name('someone'));
    expect(sandbox.getProfile(already.id)?.external_id).toBe(name('already'));
    expect(sandbox.getProfile(shared.id)?.external_id).toBe(name('shared-a'));

    // One job of 5 profiles; the lookups of the chunk together (emails, then the phones unfound).
    const [job] = sandbox.bulkImportJobs().slice(-1);
    expect(job).toMatchObject({ status: 'complete', total: 5, completed: 4, failed: 1 });
    expect(requestsTo(sandbox, 'POST /api/profile-bulk-import-jobs')).toHaveLength(1);
    expect(requestsTo(sandbox, 'GET /api/profiles')).toHaveLength(2);
    expect(requestsTo(sandbox, 'PATCH /api/profiles/{id}')).toHaveLength(1);
    expect(stdout).toContain('Bulk import jobs: 1 job: 1 complete; 5 profiles, 1 import errors');
    expect(stderr).toMatch(/bulk jobs 5\/5 profiles/);
  });

  it('--no-bulk writes every row on its own', async () => {
    const profiles = [1, 2, 3].map((n) => sandbox.seedProfile({ email: email(`one${n}`) }));
    const file = await inputFile('no-bulk.csv', [
      'id,email',
      ...[1, 2, 3].map((n) => `${name(`one${n}`)},${email(`one${n}`)}`),
    ]);

    const { exitCode } = await run(bind, file, { args: [...BULK, '--no-bulk'] });

    expect(exitCode).toBe(0);
    expect((await resultsOf(file)).map((result) => result.outcome)).toEqual(['bound', 'bound', 'bound']);
    expect(profiles.map((profile) => sandbox.getProfile(profile.id)?.external_id)).toEqual(
      [1, 2, 3].map((n) => name(`one${n}`)),
    );
    expect(requestsTo(sandbox, 'PATCH /api/profiles/{id}')).toHaveLength(3);
    expect(sandbox.requests.filter((request) => request.path.startsWith('/api/profile-bulk'))).toEqual([]);
  });

  it('below --bulk-min-rows, never uses a job', async () => {
    sandbox.seedProfile({ email: email('small') });
    const file = await inputFile('small.csv', ['id,email', `${name('small')},${email('small')}`]);
    expect((await run(bind, file)).exitCode).toBe(0);
    expect(requestsTo(sandbox, 'PATCH /api/profiles/{id}')).toHaveLength(1);
    expect(sandbox.requests.filter((request) => request.path.startsWith('/api/profile-bulk'))).toEqual([]);
  });
});

describe('apply through bulk import jobs', () => {
  it('creates the customers found nowhere in a job; an invalid email is refused before any request; changes are written one by one', async () => {
    const known = sandbox.seedProfile({ external_id: name('known'), email: email('known.old') });
    const file = await inputFile('changes.ndjson', [
      JSON.stringify({ externalId: name('new1'), email: email('new1'), phone: phone(1) }),
      JSON.stringify({ externalId: name('known'), email: email('known.new') }),
      JSON.stringify({ externalId: name('new2'), email: 'broken@nowhere' }),
      JSON.stringify({ externalId: name('new3'), email: email('new3') }),
    ]);

    const { exitCode } = await run(apply, file, { args: BULK });

    expect(exitCode).toBe(1);
    const created = [1, 3].map((n) => sandbox.findProfile({ external_id: name(`new${n}`) }));
    expect(await resultsOf(file)).toEqual([
      { line: 1, externalId: name('new1'), outcome: 'created', profileId: created[0]?.id },
      { line: 2, externalId: name('known'), outcome: 'applied', profileId: known.id },
      {
        line: 3,
        externalId: name('new2'),
        outcome: 'invalid',
        reason: 'email: must be an email address',
      },
      { line: 4, externalId: name('new3'), outcome: 'created', profileId: created[1]?.id },
    ]);
    expect(created[0]).toMatchObject({ email: email('new1'), phone_number: phone(1) });
    expect(sandbox.findProfile({ external_id: name('new2') })).toBeUndefined();
    expect(requestsTo(sandbox, 'POST /api/profile-import')).toEqual([]);
    expect(requestsTo(sandbox, 'PATCH /api/profiles/{id}')).toHaveLength(1);
    expect(sandbox.requests.some((request) => request.url.includes('broken'))).toBe(false);
  });

  it('looks a row at afresh when its job finds the identifier taken meanwhile, and parks it with the worker’s guards', async () => {
    const file = await inputFile('race.ndjson', [
      JSON.stringify({ externalId: name('first'), email: email('first') }),
      JSON.stringify({ externalId: name('raced'), email: email('raced') }),
    ]);
    const running = run(apply, file, { on: held, args: BULK });
    await expect.poll(() => held.bulkImportJobs().filter((job) => job.status === 'queued')).toHaveLength(1);
    // Another customer takes the email while the job waits.
    const other = held.seedProfile({ email: email('raced'), external_id: name('other') });
    held.settleBulkImports();

    const { exitCode } = await running;

    expect(exitCode).toBe(1);
    const results = await resultsOf(file);
    expect(results[0]).toMatchObject({ outcome: 'created' });
    expect(results[1]).toEqual({
      line: 2,
      externalId: name('raced'),
      outcome: 'parked',
      reason: `identifier_held_by_other_customer: profile ${other.id} of customer ${name('other')} holds an identifier this change needs`,
    });
    expect(held.getProfile(other.id)?.external_id).toBe(name('other'));
  });
});

describe('a run that stops, then runs again', () => {
  it('after Ctrl-C, leaves complete lines only; the rerun skips the rows done and ignores a torn line', async () => {
    const rows = 30;
    const profiles = Array.from({ length: rows }, (_, i) =>
      sandbox.seedProfile({ external_id: name(`c${i}`), email: email(`c${i}.old`) }),
    );
    const file = await inputFile('stop.csv', [
      'externalId,email',
      ...profiles.map((_, i) => `${name(`c${i}`)},${email(`c${i}.new`)}`),
    ]);
    sandbox.injectFaults({ delayMs: 30, method: 'PATCH', times: rows });
    const ctrlC = interruptWhen(() => requestsTo(sandbox, 'PATCH /api/profiles/{id}').length >= 6);

    const first = await run(apply, file, { args: ['--concurrency', '2'], signal: ctrlC.signal });
    ctrlC.stop();
    sandbox.clearFaults();

    expect(first.exitCode).toBe(130);
    expect(first.stderr).toContain('run the same command again to resume');
    const partial = await resultsOf(file);
    // The rows under way at Ctrl-C were finished; nothing after them was started.
    const patched = requestsTo(sandbox, 'PATCH /api/profiles/{id}').length;
    expect(partial.map((result) => result.outcome)).toEqual(Array(patched).fill('applied'));
    expect(patched).toBeLessThan(rows);
    await appendFile(`${file}.results.ndjson`, `{"line":${rows + 1},"externalId":"torn","outc`);
    sandbox.clearRequests();

    const second = await run(apply, file);

    expect(second.exitCode).toBe(0);
    expect(second.stderr).toContain(`resuming: ${patched} rows done by an earlier run are skipped`);
    expect(requestsTo(sandbox, 'PATCH /api/profiles/{id}')).toHaveLength(rows - patched);
    const results = await resultsOf(file);
    expect(results.map((result) => result.line)).toEqual(Array.from({ length: rows }, (_, i) => i + 2));
    expect(results.every((result) => result.outcome === 'applied')).toBe(true);
    expect(profiles.map((profile) => sandbox.getProfile(profile.id)?.email)).toEqual(
      profiles.map((_, i) => email(`c${i}.new`)),
    );
    expect(second.stdout).toContain(`Done by an earlier run (skipped): ${patched} rows`);
  });

  it('with a bulk job in flight, records the job; the rerun polls that job instead of starting another', async () => {
    const profiles = [1, 2, 3].map((n) => held.seedProfile({ email: email(`held${n}`) }));
    const file = await inputFile('held.csv', [
      'id,email',
      ...[1, 2, 3].map((n) => `${name(`held${n}`)},${email(`held${n}`)}`),
      `${name('nobody')},${email('nobody')}`,
    ]);
    const jobsBefore = held.bulkImportJobs().length;
    const ctrlC = interruptWhen(() => held.bulkImportJobs().length > jobsBefore);

    const first = await run(bind, file, { on: held, args: BULK, signal: ctrlC.signal });
    ctrlC.stop();

    expect(first.exitCode).toBe(130);
    expect((await resultsOf(file)).map((result) => result.outcome)).toEqual(['not-found']);
    const [job] = held.bulkImportJobs().slice(-1);
    expect(await readFile(`${file}.results.ndjson.jobs`, 'utf8')).toContain(`"job":"${job?.id}"`);
    held.settleBulkImports();
    held.clearRequests();

    const second = await run(bind, file, { on: held, args: BULK });

    expect(second.exitCode).toBe(0);
    expect(second.stderr).toContain('3 rows wait on 1 bulk import jobs it started, polled again');
    expect(requestsTo(held, 'POST /api/profile-bulk-import-jobs')).toEqual([]);
    expect(requestsTo(held, 'GET /api/profile-bulk-import-jobs/{id}').map((request) => request.path)).toEqual(
      [`/api/profile-bulk-import-jobs/${job?.id}`],
    );
    expect(requestsTo(held, 'GET /api/profiles')).toEqual([]);
    expect((await resultsOf(file)).map((result) => [result.line, result.outcome, result.profileId])).toEqual([
      ...profiles.map((profile, i) => [i + 2, 'bound', profile.id]),
      [5, 'not-found', undefined],
    ]);
    await expect(readFile(`${file}.results.ndjson.jobs`, 'utf8')).rejects.toThrow(/ENOENT/);
  });
});
