import { describe, expect, it } from 'vitest';
import { UsageError } from '../../cli/io.js';
import { decideWrites, rowsAlone } from '../../cli/pipeline/decide.js';
import { lookUpChunk } from '../../cli/pipeline/look-up.js';
import { requireColumns, rowKeysOf, validateRows } from '../../cli/pipeline/read.js';
import { createRecorder } from '../../cli/pipeline/record.js';
import { earlierCounts, jobsToResume } from '../../cli/pipeline/resume.js';
import { createRunStop } from '../../cli/pipeline/stop.js';
import { writeOneByOne } from '../../cli/pipeline/write.js';
import { writeInBulk } from '../../cli/pipeline/write-bulk.js';
import { invalid, type RowResult } from '../../cli/results.js';
import type { Session } from '../../cli/session.js';
import { KlaviyoUnreachableError } from '../../lib/klaviyo/errors.js';
import { captureIo } from '../support/cli.js';
import { klaviyoError } from '../support/memory-klaviyo.js';

/** Each stage of the batch pipeline (cli/run-batch.ts) on its own, with plain data. */
type Task = { line: number; externalId: string };
const session = {} as Session;
const task = (line: number, externalId = `c${line}`): Task => ({ line, externalId });
const noPhases = { lookedUp: () => undefined, queued: () => undefined, written: () => undefined };

describe('read and validate', () => {
  it('refuses a CSV header without a column the command needs, naming it', () => {
    expect(() => requireColumns(['email', 'phone'], [['customer id', 'id']])).toThrow(
      new UsageError('the CSV header has no customer id or id column (it has: email, phone)'),
    );
    expect(() => requireColumns(['id', 'email'], [['customer id', 'id']])).not.toThrow();
    expect(() => requireColumns(undefined, [['id']])).not.toThrow(); // NDJSON has no header
  });

  it('makes each row its task or its result, and keys rows by content and run', () => {
    const rows = [
      { line: 2, values: { id: 'c1' } },
      { line: 3, problem: 'not JSON' },
    ];
    const tasks = validateRows<Task>(
      rows,
      (row) => ('values' in row ? task(row.line, row.values.id) : invalid(row.line, row.problem)),
      { tenant: 't', region: 'US', fileName: 'f.csv', now: () => new Date(0) },
    );
    expect([...tasks.values()]).toEqual([task(2, 'c1'), invalid(3, 'not JSON')]);
    const run = { command: 'bind', tenant: 't', target: 'x', dryRun: false };
    const keys = rowKeysOf(rows, run);
    expect(keys.get(2)).toMatch(/^[0-9a-f]{16}$/);
    expect(rowKeysOf(rows, { ...run, dryRun: true }).get(2)).not.toBe(keys.get(2));
  });
});

describe('resume', () => {
  const keys = new Map([[2, 'k2']]);
  const run = { target: 'T', keys, retryFailed: false };
  it.each([
    [{ line: 2, outcome: 'applied', row: 'k2', target: 'T' }, run, 'keep'],
    [{ line: 2, outcome: 'applied', row: 'k2', target: 'U' }, run, 'another-target'],
    [{ line: 2, outcome: 'applied', row: 'changed', target: 'T' }, run, 'again'],
    [{ line: 2, outcome: 'failed', row: 'k2', target: 'T', transient: true }, run, 'again'],
    [{ line: 2, outcome: 'failed', row: 'k2', target: 'T' }, run, 'keep'],
    [{ line: 2, outcome: 'failed', row: 'k2', target: 'T' }, { ...run, retryFailed: true }, 'again'],
  ] as const)('an earlier %j under %j: %s', (earlier, options, expected) => {
    expect(earlierCounts(earlier as RowResult, options)).toBe(expected);
  });

  it("polls an earlier run's jobs for the rows still the same and not done", () => {
    const entry = (line: number, row: string) => ({ line, row, planned: {}, profile: { attributes: {} } });
    const unsettled = [
      { id: 'a', entries: [entry(2, 'k2'), entry(3, 'k3'), entry(4, 'old')] },
      { id: 'b', entries: [entry(3, 'k3')] },
    ];
    const jobs = jobsToResume(
      unsettled,
      new Map([[3, {}]]),
      new Map([
        [2, 'k2'],
        [3, 'k3'],
        [4, 'k4'],
      ]),
    );
    expect(jobs).toEqual([{ id: 'a', entries: [entry(2, 'k2')] }]);
  });
});

describe('look up', () => {
  const stageOf = (lookUp: () => Promise<string>) => {
    const { io, written } = captureIo();
    const looked: number[] = [];
    const stop = createRunStop(io);
    const stage = {
      command: { lookUp },
      session,
      dryRun: false,
      stop,
      phases: { lookedUp: (rows: number) => void looked.push(rows) },
      io,
    };
    return { stage, written, looked, stop };
  };

  it("gives the chunk's lookups, counted in the progress", async () => {
    const { stage, looked } = stageOf(async () => 'found');
    expect(await lookUpChunk([task(2), task(3)], stage)).toBe('found');
    expect(looked).toEqual([2]);
  });

  it('gives nothing when they fail, and says each row looks up on its own', async () => {
    const { stage, written, stop } = stageOf(async () => Promise.reject(new Error('a bad minute')));
    expect(await lookUpChunk([task(2), task(9)], stage)).toBeUndefined();
    expect(written.stderr).toContain('the lookups of lines 2–9 failed together (a bad minute)');
    expect(stop.reason()).toBeUndefined();
  });

  it('stops the run on a refused key, without the per-row note', async () => {
    const { stage, written, stop } = stageOf(async () =>
      Promise.reject(klaviyoError(401, 'not_authenticated')),
    );
    expect(await lookUpChunk([task(2)], stage)).toBeUndefined();
    expect(stop.reason()?.kind).toBe('key');
    expect(written.stderr).toBe('');
    // Stopped: the next chunk is not looked up at all.
    let asked = false;
    stage.command.lookUp = async () => {
      asked = true;
      return 'found';
    };
    expect(await lookUpChunk([task(3)], stage)).toBeUndefined();
    expect(asked).toBe(false);
  });
});

describe('decide', () => {
  it('lets only rows sharing no key with another row go in a bulk job', () => {
    const tasks = [task(2, 'a'), task(3, 'b'), task(4, 'a'), invalid(5, 'no id')];
    expect(rowsAlone(tasks, (t) => [`id:${t.externalId}`])).toEqual(new Set([3]));
  });

  it('plans the rows alone; a row it cannot plan is written on its own', async () => {
    const plan = async (t: Task) => {
      if (t.line === 3) throw new Error('state unreadable');
      return { planned: t.line, profile: { attributes: { external_id: t.externalId } } };
    };
    const bulk = { keysOf: () => [], plan, settle: async () => [] };
    const decided = await decideWrites([task(2), task(3), task(4)], 'lookups', {
      bulk,
      session,
      alone: new Set([2, 3]),
      signal: new AbortController().signal,
    });
    expect(decided).toEqual([
      { planned: 2, profile: { attributes: { external_id: 'c2' } } },
      undefined,
      undefined,
    ]);
  });
});

describe('write', () => {
  const recorded: RowResult[] = [];
  const recorder = {
    recordOutcome: (t: Task, outcome: Omit<RowResult, 'line'>) => void recorded.push({ ...t, ...outcome }),
  };

  it('records each outcome, a thrown error as its result, and stops on an unreachable Klaviyo', async () => {
    recorded.length = 0;
    const { io } = captureIo();
    const stop = createRunStop(io);
    await writeOneByOne([task(2), task(3), task(4)], 'lookups', {
      command: {
        async run(t, _session, _dryRun, lookups) {
          if (t.line === 3)
            throw new KlaviyoUnreachableError('GET', '/api/profiles', new Error('ECONNREFUSED'));
          return { outcome: 'applied', reason: lookups };
        },
      },
      session,
      dryRun: false,
      concurrency: 1,
      stop,
      recorder,
      phases: noPhases,
    });
    expect(recorded.map(({ line, outcome, transient }) => [line, outcome, transient])).toEqual([
      [2, 'applied', undefined],
      [3, 'failed', true],
      [4, 'failed', true],
    ]);
    expect(recorded[2]?.reason).toMatch(/^not attempted: Klaviyo did not answer/);
  });

  it('sends the rows planned into bulk jobs, and gives back the rest', async () => {
    const added: number[] = [];
    const jobs = {
      add: async (entry: { line: number; row: string }) => entry.line !== 4 && added.push(entry.line) > 0,
    };
    const plan = { planned: {}, profile: { attributes: {} } };
    const rest = await writeInBulk([task(2), task(3), task(4)], [plan, undefined, plan], jobs, new Map());
    expect(added).toEqual([2]);
    expect(rest).toEqual([task(3), task(4)]);
  });
});

describe('record', () => {
  it("writes each result with its row's key and the target, and counts it", () => {
    const lines: RowResult[] = [];
    let advanced = 0;
    const counts = new Map([['applied', 1]]);
    const recorder = createRecorder({
      results: { earlier: new Map([[2, { line: 2, outcome: 'applied' }]]), write: (r) => void lines.push(r) },
      keys: new Map([[3, 'k3']]),
      target: 'T',
      counts,
      onRecorded: () => advanced++,
    });
    recorder.recordOutcome(task(3), { outcome: 'applied' });
    recorder.record(invalid(4, 'no id'));
    expect(lines).toEqual([
      { line: 3, externalId: 'c3', outcome: 'applied', row: 'k3', target: 'T' },
      { line: 4, outcome: 'invalid', reason: 'no id', target: 'T' },
    ]);
    expect(counts).toEqual(
      new Map([
        ['applied', 2],
        ['invalid', 1],
      ]),
    );
    expect([...recorder.finished.keys()]).toEqual([2, 3, 4]);
    expect(advanced).toBe(2);
  });
});
