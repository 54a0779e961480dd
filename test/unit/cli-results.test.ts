import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { describePlan, dryRunOutcomeOf } from '../../cli/commands/apply.js';
import { confirmations, formatEntry, formatHistory } from '../../cli/commands/history.js';
import { jobsNote } from '../../cli/pipeline/phases.js';
import { rowResultOfError } from '../../cli/pipeline/row-result-of-error.js';
import { createProgress, formatPhase, formatProgress } from '../../cli/progress.js';
import {
  APPLY_OUTCOMES,
  BIND_OUTCOMES,
  exitCodeOf,
  formatAttention,
  formatSummary,
  maskedIdentifiers,
  openResultsFile,
  type RowResult,
  resultLine,
  rowKeyOf,
  tally,
} from '../../cli/results.js';
import { TransientError } from '../../lib/errors.js';
import { KlaviyoApiError } from '../../lib/klaviyo/errors.js';
import type { AuditEntry } from '../../lib/ports.js';
import { type AuditedValue, auditedValue, identifierKeyOf } from '../../lib/privacy/identifier-digest.js';
import { ChangeParkedError, IdentifierHeldError } from '../../lib/sync/sync-identity-change.js';
import { TEST_IDENTIFIER_KEY } from '../support/factories.js';
import { useTempDir } from '../support/temp-dir.js';

/** Removed after this file's tests, with every folder made in it. */
const tempDir = useTempDir('cli-results');

describe('results', () => {
  it('writes one JSON line per row, fields in order and absent ones left out', () => {
    expect(resultLine({ profileId: '01A', outcome: 'bound', line: 3, externalId: '42' })).toBe(
      '{"line":3,"externalId":"42","outcome":"bound","profileId":"01A"}\n',
    );
    expect(resultLine({ line: 4, outcome: 'invalid', reason: 'externalId is missing' })).toBe(
      '{"line":4,"outcome":"invalid","reason":"externalId is missing"}\n',
    );
  });

  it('masks the emails and phones a reason quotes: the file keeps none as it is', () => {
    const line = resultLine({
      line: 5,
      outcome: 'failed',
      reason: 'klaviyo_invalid: ada.lovelace@example.com is taken, and +14155550123 too',
    });
    expect(line).toBe(
      '{"line":5,"outcome":"failed","reason":"klaviyo_invalid: a***@example.com is taken, and ********0123 too"}\n',
    );
  });

  it('counts every outcome, listing those that did not happen as 0', () => {
    const counts = tally(BIND_OUTCOMES, [
      { outcome: 'bound' },
      { outcome: 'bound' },
      { outcome: 'not-found' },
    ]);
    expect(Object.fromEntries(counts)).toEqual({
      bound: 2,
      unchanged: 0,
      conflict: 0,
      'not-found': 1,
      skipped: 0,
      failed: 0,
      invalid: 0,
    });
  });

  it('exits 1 only when a row needs a person: invalid, failed, parked or conflict', () => {
    const exitWith = (outcome: string) =>
      exitCodeOf(tally(APPLY_OUTCOMES, [{ outcome: 'applied' }, { outcome }]));
    expect(['created', 'unchanged', 'stale', 'skipped', 'would-create'].map(exitWith)).toEqual([
      0, 0, 0, 0, 0,
    ]);
    expect(['invalid', 'failed', 'parked', 'conflict', 'would-park'].map(exitWith)).toEqual([1, 1, 1, 1, 1]);
  });

  it('lists the first rows that need attention, masked, then how many more and where', () => {
    const results = [
      { line: 9, externalId: 'c9', outcome: 'failed', reason: 'klaviyo_invalid: ada@example.com is refused' },
      { line: 2, externalId: 'c2', outcome: 'created' },
      { line: 3, outcome: 'invalid', reason: 'externalId is missing' },
      { line: 4, externalId: 'c\x1b[2J', outcome: 'parked', reason: 'held' },
    ];
    const identifiers = new Map([
      [9, maskedIdentifiers({ email: 'ada@example.com', phone: '+14155550100' })],
    ]);
    expect(formatAttention(results, (line) => identifiers.get(line), 'f.results.ndjson', 2)).toBe(
      [
        'Rows that need attention (3):',
        '  line 3  (no externalId)  invalid  externalId is missing',
        '  line 4  c\\x1b[2J  parked  held',
        "  … and 1 more: every row's outcome and reason is in f.results.ndjson",
        '',
      ].join('\n'),
    );
    expect(formatAttention(results, (line) => identifiers.get(line), 'f.results.ndjson')).toContain(
      '  line 9  c9  failed  klaviyo_invalid: a***@example.com is refused  [email a***@example.com, phone ********0100]\n',
    );
    expect(formatAttention([{ line: 1, outcome: 'created' }], () => undefined, 'f')).toBe('');
  });

  it('summarises by outcome with the rate, any retries, and where the results are', () => {
    const summary = formatSummary({
      title: 'apply changes.csv',
      counts: tally(['applied', 'created', 'invalid'], [{ outcome: 'applied' }, { outcome: 'invalid' }]),
      elapsedMs: 4_000,
      resultsPath: 'changes.csv.results.ndjson',
      retries: { total: 2, throttled: 1 },
    });
    expect(summary).toBe(
      [
        'apply changes.csv: 2 rows in 4.0 s, 0.5 rows/s',
        '  applied       1',
        '  created       0',
        '  invalid       1',
        'Klaviyo requests retried: 2 (1 after a 429)',
        'Results: changes.csv.results.ndjson (emails and phones masked; delete it when done)',
        '',
      ].join('\n'),
    );
  });
});

describe('resuming from a results file', () => {
  const run = { command: 'bind', tenant: 'acme', target: 'a1b2c3d4e5f60718', dryRun: false };

  it('keys a row by its content, the command, the tenant, the Klaviyo target and the mode', () => {
    const key = rowKeyOf(run, { id: '42', email: 'a@example.com' });
    expect(key).toMatch(/^[0-9a-f]{16}$/);
    expect(rowKeyOf(run, { id: '42', email: 'a@example.com' })).toBe(key);
    for (const other of [
      rowKeyOf(run, { id: '42', email: 'b@example.com' }),
      rowKeyOf({ ...run, command: 'apply' }, { id: '42', email: 'a@example.com' }),
      rowKeyOf({ ...run, tenant: 'other' }, { id: '42', email: 'a@example.com' }),
      rowKeyOf({ ...run, target: 'ffffffffffffffff' }, { id: '42', email: 'a@example.com' }),
      rowKeyOf({ ...run, dryRun: true }, { id: '42', email: 'a@example.com' }),
    ])
      expect(other).not.toBe(key);
  });

  it('keeps the complete lines the rerun accepts, drops a torn last line, and rewrites all in input order at the end', async () => {
    const path = join(await mkdtemp(join(tempDir(), 'cli-results-')), 'results.ndjson');
    const earlier: RowResult[] = [
      { line: 5, outcome: 'bound', row: 'k5' },
      { line: 2, outcome: 'bound', row: 'k2' },
      { line: 3, outcome: 'failed', row: 'k3' },
      { line: 4, outcome: 'bound', row: 'changed' },
    ];
    await writeFile(path, `${earlier.map(resultLine).join('')}{"line":6,"outcome":"bou`);

    const keys = new Map([
      [2, 'k2'],
      [3, 'k3'],
      [4, 'k4'],
      [5, 'k5'],
      [6, 'k6'],
    ]);
    const results = await openResultsFile(
      path,
      (result) => result.outcome !== 'failed' && result.row === keys.get(result.line),
    );

    expect([...results.earlier.keys()]).toEqual([5, 2]);
    // The file holds only what counts, whole, before this run adds to it.
    expect(await readFile(path, 'utf8')).toBe(
      resultLine(earlier[0] as RowResult) + resultLine(earlier[1] as RowResult),
    );
    results.write({ line: 4, outcome: 'bound', row: 'k4' });
    results.write({ line: 3, outcome: 'not-found', row: 'k3' });
    await results.finish();
    const lines = (await readFile(path, 'utf8'))
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line).line);
    expect(lines).toEqual([2, 3, 4, 5]);
  });

  it('without resume, starts the file afresh', async () => {
    const path = join(await mkdtemp(join(tempDir(), 'cli-results-')), 'results.ndjson');
    await writeFile(path, resultLine({ line: 2, outcome: 'bound' }));
    const results = await openResultsFile(path);
    expect(results.earlier.size).toBe(0);
    await results.finish();
    expect(await readFile(path, 'utf8')).toBe('');
  });

  it('summarises what an earlier run did, what is not done, and the bulk jobs', () => {
    const summary = formatSummary({
      title: 'bind customers.csv',
      counts: tally(
        ['bound', 'not-found'],
        [{ outcome: 'bound' }, { outcome: 'bound' }, { outcome: 'not-found' }],
      ),
      elapsedMs: 2_000,
      resultsPath: 'r.ndjson',
      retries: { total: 0, throttled: 0 },
      earlier: 1,
      notDone: 4,
      bulk: { profiles: 2, importErrors: 0, note: '1 job: 1 complete' },
    });
    expect(summary.split('\n')).toEqual([
      'bind customers.csv: 3 rows in 2.0 s, 1.0 rows/s',
      '  bound           2',
      '  not-found       1',
      'Done by an earlier run (skipped): 1 rows',
      'Not done yet: 4 rows (run the same command again to resume)',
      'Bulk import jobs: 1 job: 1 complete; 2 profiles, 0 import errors',
      'Results: r.ndjson (emails and phones masked; delete it when done)',
      '',
    ]);
  });
});

describe('rowResultOfError', () => {
  it('parks what the policy parks, and what another customer blocks (a CLI run has no queue to wait in)', () => {
    const parked = new ChangeParkedError('duplicate_profile', 'Profile 01B duplicates 01A', {
      profileId: '01A',
      holderId: '01B',
    });
    expect(rowResultOfError(parked)).toEqual({
      outcome: 'parked',
      reason: 'duplicate_profile: Profile 01B duplicates 01A',
      profileId: '01A',
    });
    expect(rowResultOfError(new IdentifierHeldError('will retry', { holderId: '01B' }))).toEqual({
      outcome: 'parked',
      reason:
        'identifier_held_by_other_customer: profile 01B of another customer holds an identifier this change needs',
    });
    const named = new IdentifierHeldError('will retry', { holderId: '01B', holderExternalId: 'C-9' });
    expect(rowResultOfError(named).reason).toBe(
      'identifier_held_by_other_customer: profile 01B of customer C-9 holds an identifier this change needs',
    );
  });

  it('fails rows on errors, with their reason', () => {
    const refused = new KlaviyoApiError(400, 'PATCH', '/api/profiles/01A', [
      { code: 'invalid', detail: 'Bad email' },
    ]);
    expect(rowResultOfError(refused)).toEqual({
      outcome: 'failed',
      reason: 'klaviyo_invalid: Klaviyo answered 400 to PATCH /api/profiles/01A: Bad email',
    });
    expect(rowResultOfError(new TransientError('merge_pending', 'not merged yet'))).toMatchObject({
      reason: 'merge_pending: not merged yet',
    });
    expect(rowResultOfError(new TypeError('oops'))).toEqual({ outcome: 'failed', reason: 'TypeError: oops' });
  });
});

describe('describePlan', () => {
  it('says what a dry run would have done', () => {
    expect(
      describePlan({
        action: 'patch',
        profileId: '01A',
        attributes: { email: 'a@x.io', external_id: '1' },
        bind: true,
      }),
    ).toBe('would patch profile 01A: email, external_id');
    expect(describePlan({ action: 'merge-then-patch', profileId: '01A', sourceId: '01B' })).toBe(
      'would merge profile 01B into 01A, then patch it',
    );
    expect(
      describePlan({ action: 'retry', reason: 'identifier_held_by_other_customer', holderId: '01B' }),
    ).toBe('would park: identifier_held_by_other_customer (profile 01B)');
  });

  it('counts a dry run by what would happen', () => {
    const outcomes = [
      dryRunOutcomeOf({ action: 'create', attributes: { external_id: '1' } }),
      dryRunOutcomeOf({ action: 'patch', profileId: '01A', attributes: { email: 'a@x.io' }, bind: false }),
      dryRunOutcomeOf({ action: 'patch', profileId: '01A', attributes: { external_id: '1' }, bind: true }),
      dryRunOutcomeOf({ action: 'merge-then-patch', profileId: '01A', sourceId: '01B' }),
      dryRunOutcomeOf({ action: 'skip', reason: 'unchanged', profileId: '01A' }),
      dryRunOutcomeOf({ action: 'skip', reason: 'no_profile' }),
      dryRunOutcomeOf({ action: 'park', reason: 'duplicate_profile', profileId: '01A', holderId: '01B' }),
    ];
    expect(outcomes).toEqual([
      'would-create',
      'would-patch',
      'would-bind',
      'would-merge',
      'unchanged',
      'would-skip',
      'would-park',
    ]);
  });
});

describe('progress', () => {
  it('formats a line with bar, percentage, counts, rate and time left', () => {
    const state = { label: 'apply', done: 250, total: 1000, elapsedMs: 5_000 };
    expect(formatProgress(state, { bar: true })).toBe(
      'apply  [######------------------]   25%  250/1000  50.0 rows/s  ETA 15 s',
    );
    expect(formatProgress({ ...state, done: 1000, elapsedMs: 20_000 })).toBe(
      'apply  100%  1000/1000  50.0 rows/s',
    );
    expect(formatProgress({ ...state, done: 10, elapsedMs: 1_000 })).toMatch(/ETA 1 min 39 s$/);
  });

  function run(total: number, tty: boolean) {
    let now = 0;
    const lines: string[] = [];
    const progress = createProgress({
      label: 'apply',
      total,
      output: { write: (text: string) => lines.push(text), isTTY: tty },
      now: () => now,
    });
    return {
      lines,
      progress,
      advance: (rows: number, msEach: number) => {
        for (let i = 0; i < rows; i++) {
          now += msEach;
          progress.advance();
        }
      },
      wait: (ms: number) => {
        now += ms;
        progress.refresh();
      },
    };
  }

  it('without a terminal, prints a line every 10% of the rows, with no rate before a second has passed', () => {
    const { lines, advance, progress } = run(600, false);
    progress.phase('lookups', { done: 0, total: 600, unit: 'rows' });
    advance(60, 1);
    progress.phase('lookups', { done: 600, total: 600, unit: 'rows' });
    advance(540, 10);
    progress.finish();
    expect(lines).toHaveLength(10); // 10%, 20%, … 100%
    expect(lines.every((line) => line.endsWith('\n') && !line.slice(0, -1).includes('\n'))).toBe(true);
    expect(lines[0]).toBe('apply   10%  60/600  (lookups 0/600 rows)\n');
    expect(lines.at(-1)).toMatch(
      /^apply {2}100% {2}600\/600 {2}\d+\.\d rows\/s {2}\(lookups 600\/600 rows\)\n$/,
    );
  });

  it('without a terminal, also prints every 5 seconds while rows are slow', () => {
    const { lines, advance, wait } = run(1000, false);
    advance(1, 10);
    wait(4_000);
    expect(lines).toHaveLength(0);
    wait(1_000);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/1\/1000/);
  });

  it('on a terminal, redraws one line in place at most every 100 ms and ends it with a line break', () => {
    const { lines, advance, progress } = run(100, true);
    advance(100, 10);
    progress.finish();
    expect(lines.filter((line) => line.startsWith('\r'))).toHaveLength(12); // start, every 10th row, the end
    expect(lines.at(-2)).toMatch(/^\rapply {2}\[#+\] {2}100% {2}100\/100 /);
    expect(lines.at(-2)?.endsWith('\x1b[K')).toBe(true); // clears what a longer line left
    expect(lines.at(-1)).toBe('\n');
  });
});

describe('progress by phase', () => {
  it('formats a phase with its unit and note, a bar on a terminal', () => {
    expect(
      formatPhase('bulk jobs', { done: 5000, total: 10_000, unit: 'profiles', note: '1 job: 1 processing' }),
    ).toBe('  bulk jobs      50%  5000/10000 profiles  (1 job: 1 processing)');
    expect(formatPhase('lookups', { done: 0, total: 0, unit: 'rows' }, { bar: true })).toBe(
      `  lookups       [${'#'.repeat(24)}]  100%  0/0 rows`,
    );
    const status = (...statuses: string[]) => ({
      jobs: new Map(
        statuses.map((s, i) => [String(i), { id: String(i), status: s, total: 1, completed: 0, failed: 0 }]),
      ),
    });
    expect(jobsNote(status('complete', 'processing', 'complete') as never)).toBe(
      '3 jobs: 2 complete, 1 processing',
    );
  });

  it('prints the phases under the rows; on a terminal, redraws them all in place', () => {
    const printed: string[] = [];
    const plain = createProgress({
      label: 'bind',
      total: 2,
      output: { write: (text: string) => printed.push(text) },
    });
    plain.phase('lookups', { done: 2, total: 2, unit: 'rows' });
    plain.advance();
    plain.advance();
    plain.finish();
    expect(printed.at(-1)).toMatch(/^bind +100% +2\/2 .*\(lookups 2\/2 rows\)\n$/);

    const drawn: string[] = [];
    let now = 0;
    const tty = createProgress({
      label: 'bind',
      total: 2,
      output: { write: (text: string) => drawn.push(text), isTTY: true },
      now: () => now,
    });
    tty.phase('lookups', { done: 1, total: 2, unit: 'rows' });
    tty.phase('one by one', { done: 0, total: 1, unit: 'rows' });
    now += 200;
    tty.refresh();
    tty.finish();
    // Two lines were drawn below the first: the last redraw goes back up over them.
    const last = drawn.at(-2) ?? '';
    expect(last.startsWith('\x1b[2A\rbind ')).toBe(true);
    expect(last.split('\x1b[K\n').map((line) => line.trim().split('  ')[0])).toEqual([
      '\x1b[2A\rbind',
      'lookups',
      'one by one',
    ]);
    expect(last.endsWith('\x1b[K')).toBe(true);
  });
});

describe('history', () => {
  const key = TEST_IDENTIFIER_KEY;
  const audited = (field: 'email' | 'phone_number', value: string) =>
    auditedValue(key, field, value) as AuditedValue;
  const entry: AuditEntry = {
    tenant: 'acme',
    externalId: '42',
    sourceEventId: 'cli:changes.csv:3',
    outcome: 'bound',
    plan: 'patch',
    profileIds: ['01A'],
    before: { email: audited('email', 'old@example.com'), phone_number: null, external_id: null },
    after: { email: audited('email', 'new@example.com'), external_id: '42' },
    keyId: key.id,
    occurredAt: '2026-06-01T00:00:00.000Z',
    decidedAt: '2026-06-01T00:00:01.000Z',
  };

  it('prints a decision on one line: time, outcome, plan, profiles, before → after masked, reason, event', () => {
    expect(formatEntry(entry)).toBe(
      '2026-06-01T00:00:01.000Z  bound      patch             profile 01A  email o***@example.com → n***@example.com, external_id (none) → 42  [cli:changes.csv:3]',
    );
    expect(
      formatEntry({
        ...entry,
        outcome: 'parked',
        plan: 'park',
        profileIds: ['01A', '01B'],
        before: undefined,
        after: undefined,
        reason: 'duplicate_profile',
      }),
    ).toBe(
      '2026-06-01T00:00:01.000Z  parked     park              profiles 01A, 01B  (duplicate_profile)  [cli:changes.csv:3]',
    );
  });

  it('masks an entry written before masking, and says when only the digest is known', () => {
    const legacy = {
      ...entry,
      before: { email: 'old@example.com', phone_number: '+14155550123' },
      keyId: undefined,
    };
    expect(formatEntry({ ...legacy, after: { email: 'new@example.com', phone_number: null } })).toContain(
      'email o***@example.com → n***@example.com, phone_number ********0123 → (none)',
    );
    const fromRecord = { ...entry, before: { email: { digest: 'x' } } };
    expect(formatEntry(fromRecord)).toContain('email (held, digest only) → n***@example.com');
  });

  it('confirms whether a value was held before and after each step, by digest, showing no value', () => {
    const probe = (value: string) => [{ field: 'email' as const, value }];
    expect(confirmations(entry, key, probe('OLD@example.com'))).toBe(
      'email: held before: yes, set after: no',
    );
    expect(confirmations(entry, key, probe('new@example.com'))).toBe(
      'email: held before: no, set after: yes',
    );
    expect(confirmations(entry, key, [{ field: 'phone_number', value: '+14155550123' }])).toBe(
      'phone: held before: no',
    );
    expect(
      confirmations({ ...entry, before: undefined, after: undefined }, key, probe('x@example.com')),
    ).toBe('email: not recorded in this step');
    const otherKey = identifierKeyOf({ klaviyoPrivateKey: 'pk_other' });
    expect(confirmations(entry, otherKey, probe('old@example.com'))).toBe(
      'email: held before: cannot tell (another key), set after: cannot tell (another key)',
    );
    const history = formatHistory([entry], 'acme', '42', { key, probes: probe('new@example.com') });
    expect(history).toContain('\n    email: held before: no, set after: yes\n');
    expect(history).not.toContain('new@example.com');
  });

  it('says so when nothing was recorded', () => {
    expect(formatHistory([], 'acme', '42')).toBe('No decisions recorded for customer 42 of tenant acme.\n');
  });
});
