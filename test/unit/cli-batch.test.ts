import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setImmediate as tick } from 'node:timers/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { type BatchCommand, CHUNK_ROWS } from '../../cli/batch.js';
import { keyFingerprint } from '../../cli/klaviyo-key.js';
import { invalid, type RowResult } from '../../cli/results.js';
import { batchCommandLine } from '../../cli/run-batch.js';
import { captureIo } from '../support/cli.js';
import { klaviyoError } from '../support/memory-klaviyo.js';
import { useTempDir } from '../support/temp-dir.js';

/** Removed after this file's tests, with every folder made in it. */
const tempDir = useTempDir('cli-batch');

/**
 * How a file is worked through, with a command that records what it is asked (no Klaviyo, no
 * AWS): a chunk at a time, lookups first, each customer's rows in order, results in input order.
 */
const env = { KLAVIYO_API_KEY: 'pk_unit_test', KLAVIYO_BASE_URL: 'http://127.0.0.1:9' };
const ROWS = 1_100;
let file: string;

beforeAll(async () => {
  const dir = await mkdtemp(join(tempDir(), 'cli-batch-'));
  file = join(dir, 'rows.csv');
  // 400 customers, so most have rows in more than one chunk; every 97th row has no id.
  const rows = Array.from({ length: ROWS }, (_, n) => (n % 97 === 50 ? ',x' : `c${n % 400},x`));
  await writeFile(file, `externalId,email\n${rows.join('\n')}\n`);
});

type Task = { line: number; externalId: string };

function aRecordingCommand(lookUp: (tasks: readonly Task[]) => Promise<string>) {
  const events: string[] = [];
  const command: BatchCommand<Task, string> = {
    name: 'test',
    outcomes: ['done', 'failed', 'invalid'],
    dryRunOutcomes: ['done', 'failed', 'invalid'],
    requiredColumns: [['externalid']],
    taskOf: (row) =>
      'values' in row && row.values.externalid
        ? { line: row.line, externalId: row.values.externalid }
        : invalid(row.line, 'no id'),
    async lookUp(tasks) {
      events.push(`lookUp ${tasks.length}`);
      return lookUp(tasks);
    },
    async run(task, _session, _dryRun, lookups) {
      events.push(`start ${task.externalId} ${task.line}`);
      await tick();
      events.push(`end ${task.externalId} ${task.line}`);
      return { outcome: 'done', reason: lookups ?? 'alone' };
    },
  };
  return { command, events };
}

let runs = 0;

/** Each run with results of its own: a run over the same results would resume the one before. */
async function runOver(command: BatchCommand<Task, string>) {
  const { io, written } = captureIo(env);
  const resultsPath = `${file}.${++runs}.results.ndjson`;
  const exitCode = await batchCommandLine('usage', () => command)(
    [file, '--concurrency', '8', '--results', resultsPath],
    io,
  );
  const text = await readFile(resultsPath, 'utf8');
  const results = text
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as RowResult);
  return { exitCode, results, written };
}

const chunkOf = (line: number) => Math.floor((line - 2) / CHUNK_ROWS);

describe('a batch run', () => {
  it('looks each chunk up before running it, keeps each customer in order, and writes results in input order', async () => {
    const { command, events } = aRecordingCommand(async () => 'together');
    const { exitCode, results } = await runOver(command);

    expect(exitCode).toBe(1); // the rows without an id
    expect(results.map((result) => result.line)).toEqual(Array.from({ length: ROWS }, (_, n) => n + 2));
    expect(results.filter((result) => result.outcome === 'invalid')).toHaveLength(11);
    expect(results.every((result) => result.outcome === 'invalid' || result.reason === 'together')).toBe(
      true,
    );

    const lookUps = events.flatMap((event, index) => (event.startsWith('lookUp') ? [index] : []));
    expect(lookUps.map((index) => events[index])).toEqual(['lookUp 495', 'lookUp 495', 'lookUp 99']);
    // Every row of a chunk runs after its lookups and ends before the next chunk's.
    events.forEach((event, index) => {
      const line = Number(event.split(' ')[2]);
      if (Number.isNaN(line)) return;
      const chunk = chunkOf(line);
      expect(index).toBeGreaterThan(lookUps[chunk] as number);
      if (chunk + 1 < lookUps.length) expect(index).toBeLessThan(lookUps[chunk + 1] as number);
    });
    const linesOf = (customer: string) =>
      events
        .filter((event) => event.startsWith(`start ${customer} `))
        .map((event) => Number(event.split(' ')[2]));
    expect(linesOf('c7')).toEqual([9, 409, 809]);
  });

  it("runs a chunk's rows on their own when its lookups fail, and says so", async () => {
    let calls = 0;
    const { command } = aRecordingCommand(async () => {
      if (++calls === 2) throw new Error('Klaviyo had a bad minute');
      return 'together';
    });
    const { results, written } = await runOver(command);

    expect(
      results.filter((result) => result.reason === 'alone').map((result) => chunkOf(result.line)),
    ).toEqual(Array(495).fill(1));
    expect(written.stderr).toContain(
      'the lookups of lines 502–1001 failed together (Klaviyo had a bad minute); each of those rows looks its customer up on its own',
    );
  });

  it('stops at once when the lookups meet a refused key: no row is attempted', async () => {
    const { command, events } = aRecordingCommand(async () => {
      throw klaviyoError(401, 'not_authenticated');
    });
    const { exitCode, results, written } = await runOver(command);

    expect(exitCode).toBe(1);
    expect(events).toEqual(['lookUp 495']);
    expect(results.filter((result) => result.outcome === 'failed')).toHaveLength(ROWS - 11);
    expect(results.find((result) => result.outcome === 'failed')?.reason).toMatch(/^not attempted: /);
    expect(written.stderr).toContain('Klaviyo refused the API key, so the run stopped');
  });
});

describe('resuming a batch run', () => {
  /** Runs the command over `resultsPath` with `env`: a rerun over the same results resumes. */
  async function runAgainst(resultsPath: string, runEnv: NodeJS.ProcessEnv) {
    const { command, events } = aRecordingCommand(async () => 'together');
    const { io, written } = captureIo(runEnv);
    const exitCode = await batchCommandLine('usage', () => command)([file, '--results', resultsPath], io);
    const started = events.filter((event) => event.startsWith('start')).length;
    return { exitCode, started, written };
  }
  const resultsPath = () => `${file}.${++runs}.results.ndjson`;

  it('skips the rows done against the same Klaviyo and tenant', async () => {
    const path = resultsPath();
    await runAgainst(path, env);
    const again = await runAgainst(path, env);
    expect(again.started).toBe(0);
    expect(again.written.stderr).toContain(`resuming: ${ROWS} rows done by an earlier run are skipped`);
  });

  it.each([
    ['another base URL', { ...env, KLAVIYO_BASE_URL: 'http://127.0.0.2:9' }],
    ['another key', { ...env, KLAVIYO_API_KEY: 'pk_another_account' }],
    ['another tenant', { ...env, DEFAULT_TENANT: 'acme' }],
  ])('runs every row again against %s, and says so', async (_, other) => {
    const path = resultsPath();
    await runAgainst(path, env);
    const again = await runAgainst(path, other);
    expect(again.started).toBe(ROWS - 11);
    expect(again.written.stderr).toContain(
      `identity-sync: ${ROWS} rows in ${path} were done against another Klaviyo account, base URL or tenant` +
        ' (or by a version that did not record which): they are not skipped; this run starts afresh',
    );
    expect(again.written.stderr).not.toContain('resuming');
    const lines = (await readFile(path, 'utf8')).trim().split('\n');
    expect(new Set(lines.map((line) => (JSON.parse(line) as RowResult).target)).size).toBe(1);
  });

  it('runs every row again over a results file that does not say which Klaviyo it was done against', async () => {
    const path = resultsPath();
    await runAgainst(path, env);
    // As an earlier version wrote it: no target on its lines.
    const lines = (await readFile(path, 'utf8')).trim().split('\n');
    await writeFile(
      path,
      lines.map((line) => `${JSON.stringify({ ...JSON.parse(line), target: undefined })}\n`).join(''),
    );
    const again = await runAgainst(path, env);
    expect(again.started).toBe(ROWS - 11);
    expect(again.written.stderr).toContain(
      `${ROWS} rows in ${path} were done against another Klaviyo account`,
    );
  });

  it('says which Klaviyo the run writes to, with a fingerprint of the key and never the key', async () => {
    const { written } = await runAgainst(resultsPath(), env);
    const fingerprint = keyFingerprint(env.KLAVIYO_API_KEY);
    expect(fingerprint).toMatch(/^[0-9a-f]{12}$/);
    expect(written.stderr).toContain(
      `for tenant default at http://127.0.0.1:9 (key ${fingerprint} from KLAVIYO_API_KEY)`,
    );
    expect(written.stderr + written.stdout).not.toContain(env.KLAVIYO_API_KEY);
  });
});
