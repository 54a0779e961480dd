import { basename } from 'node:path';
import { KlaviyoUnreachableError } from '../lib/klaviyo/errors.js';
import {
  type BatchCommand,
  type BatchOptions,
  CHUNK_ROWS,
  outcomeOfError,
  parseBatchArgs,
  type RowOutcome,
} from './batch.js';
import {
  type BulkEntry,
  type BulkStatus,
  createBulkJobs,
  openJobsJournal,
  type Settled,
} from './bulk-jobs.js';
import { type InputRow, readInputFile } from './input.js';
import {
  type CliIo,
  counted,
  EXIT_ATTENTION,
  EXIT_INTERRUPTED,
  EXIT_OK,
  runCommand,
  stopController,
  UsageError,
} from './io.js';
import { createProgress, type Progress } from './progress.js';
import {
  exitCodeOf,
  formatAttention,
  formatSummary,
  maskedIdentifiers,
  openResultsFile,
  type RowResult,
  rowKeyOf,
  tally,
} from './results.js';
import type { RowContext } from './rows.js';
import { mapConcurrently, runInCustomerOrder } from './run-in-order.js';
import { cliSettings, describeTarget, isKeyRefused, openSession, targetIdOf } from './session.js';
import { printable } from './terminal.js';

type Row = { line: number; externalId: string };

/** A command that runs `command` over a file (apply, bind): `--help` prints `usage`. */
export function batchCommandLine<Task extends Row, Lookups>(
  usage: string,
  command: () => BatchCommand<Task, Lookups>,
): (args: string[], io: CliIo) => Promise<number> {
  return (args, io) =>
    runCommand(io, usage, async () => {
      const options = parseBatchArgs(args);
      if (!options) {
        io.stdout.write(`${usage}\n`);
        return EXIT_OK;
      }
      return runBatch(command(), options, io);
    });
}

/** Why a run stopped before its last row: rows not attempted then are reported (but for Ctrl-C). */
type StopReason = { kind: 'key' | 'unreachable' | 'interrupted'; message: string };

/**
 * Reads the file and works through its rows a chunk at a time (lookups together, then each row's
 * write: through bulk import jobs when its outcome is known in advance, else on its own, paced,
 * `concurrency` customers at once, each customer's rows in file order), and reports: progress on
 * stderr, a results line per row as it finishes (the file in input order at the end), the summary
 * on stdout. Rows an earlier run finished are skipped. Returns the exit code.
 */
async function runBatch<Task extends Row, Lookups>(
  command: BatchCommand<Task, Lookups>,
  options: BatchOptions,
  io: CliIo,
): Promise<number> {
  const settings = cliSettings(io.env);
  // The tenant and its key first: an unknown tenant, or a key that is not the tenant's, stops the
  // run before anything is read or written. Sends nothing to Klaviyo yet.
  const session = await openSession(options, settings);
  try {
    const input = await readInputFile(options.file);
    requireColumns(input.columns, command.requiredColumns);
    const dryRun = options.dryRun || session.policies.dryRun;
    const started = new Date();
    const context: RowContext = {
      tenant: session.tenant,
      region: options.region ?? settings.DEFAULT_PHONE_REGION,
      fileName: basename(options.file),
      now: () => started,
    };
    // Rows are done only against the same Klaviyo account (base URL and key) and tenant.
    const target = targetIdOf(session.target, session.tenant);
    const runKey = { command: command.name, tenant: session.tenant, target, dryRun };
    const keys = new Map(input.rows.map((row) => [row.line, rowKeyOf(runKey, contentOf(row))]));
    const resume = !options.restart;
    let ofAnotherTarget = 0;
    const results = await openResultsFile(
      options.resultsPath,
      resume
        ? (earlier) => {
            if (earlier.target !== target) {
              ofAnotherTarget++;
              return false;
            }
            if (earlier.outcome === 'failed' && (earlier.transient || options.retryFailed)) return false;
            return earlier.row === keys.get(earlier.line);
          }
        : undefined,
    );
    const journal = await openJobsJournal<unknown>(`${options.resultsPath}.jobs`, resume);
    const tasks = new Map<number, Task | RowResult>(
      input.rows.map((row) => [row.line, command.taskOf(row, context)]),
    );

    // Rows of jobs an earlier run started and did not settle: those jobs are polled, not started again.
    // Bulk jobs are for real writes; --no-bulk or a dry run looks those rows up afresh instead.
    const bulk = options.bulk && !dryRun && session.bulk ? command.bulk : undefined;
    const resumedJobs = (bulk ? journal.unsettled : [])
      .map(({ id, entries }) => ({
        id,
        entries: entries.filter(
          (entry) => !results.earlier.has(entry.line) && keys.get(entry.line) === entry.row,
        ),
      }))
      .filter((job) => job.entries.length > 0);
    const inResumedJobs = new Set(resumedJobs.flatMap((job) => job.entries.map((entry) => entry.line)));
    const todo = input.rows.filter((row) => !results.earlier.has(row.line) && !inResumedJobs.has(row.line));
    const newJobs = bulk !== undefined && input.rows.length >= options.bulkMinRows;

    io.stderr.write(
      `identity-sync ${command.name}: ${input.rows.length} rows of ${options.file} for tenant ${session.tenant}` +
        ` at ${describeTarget(session.target)}${dryRun ? ' (dry run: nothing is written)' : ''}; state ${session.description};` +
        ` requests paced ${session.pacing}` +
        `${newJobs ? '; writes known in advance go through bulk import jobs' : ''}\n`,
    );
    if (ofAnotherTarget > 0) io.stderr.write(`${anotherTargetNote(options.resultsPath, ofAnotherTarget)}\n`);
    if (results.earlier.size + inResumedJobs.size > 0) {
      io.stderr.write(
        `identity-sync: resuming: ${results.earlier.size} rows done by an earlier run are skipped` +
          `${resumedJobs.length > 0 ? `; ${inResumedJobs.size} rows wait on ${resumedJobs.length} bulk import jobs it started, polled again` : ''}\n`,
      );
    }

    const counts = tally(dryRun ? command.dryRunOutcomes : command.outcomes, results.earlier.values());
    /** Every row's result so far, earlier runs' included: the rows that need attention are listed from it. */
    const finished = new Map(results.earlier);
    const failedKept = [...results.earlier.values()].filter((result) => result.outcome === 'failed').length;
    const progress = createProgress({
      label: command.name,
      total: todo.length + inResumedJobs.size,
      output: io.stderr,
    });
    const phases = phaseCounters(
      progress,
      todo.filter((row) => !('outcome' in (tasks.get(row.line) as Task | RowResult))).length,
    );
    const stop = stopController(io, {
      kind: 'interrupted',
      message: 'interrupted (Ctrl-C)',
    } satisfies StopReason);
    const stopOn = (error: unknown) => {
      if (isKeyRefused(error)) stop.abort({ kind: 'key', message: (error as Error).message });
      else if (error instanceof KlaviyoUnreachableError)
        stop.abort({ kind: 'unreachable', message: error.message });
    };
    const stopReason = () => stop.signal.reason as StopReason | undefined;

    const record = (result: RowResult) => {
      const row = keys.get(result.line);
      results.write(row ? { ...result, row, target } : { ...result, target });
      finished.set(result.line, result);
      counts.set(result.outcome, (counts.get(result.outcome) ?? 0) + 1);
      progress.advance();
    };
    const recordTask = (task: Task, outcome: RowOutcome) =>
      record({ line: task.line, externalId: task.externalId, ...outcome });

    /** Rows a bulk job sent back (cancelled, an error that says look again): run on their own at the end. */
    const again: Task[] = [];
    const taskAt = (line: number) => tasks.get(line) as Task;
    const jobs =
      bulk && session.bulk
        ? createBulkJobs<unknown, RowOutcome>({
            klaviyo: session.bulk,
            journal,
            signal: stop.signal,
            settle: (jobId, done) =>
              bulk.settle(
                jobId,
                done.map(({ entry, error }) => ({ task: taskAt(entry.line), planned: entry.planned, error })),
                session,
              ),
            onSettled(entry, settled: Settled<RowOutcome>) {
              const task = taskAt(entry.line);
              if (settled === 'again') again.push(task);
              else recordTask(task, settled);
            },
            onChange: () => jobs && phases.bulk(jobs.status()),
            onRefused: (error) =>
              io.stderr.write(
                `identity-sync: Klaviyo refused a bulk import job (${printable(error.message)}); the rows are written on their own instead` +
                  ' (bulk import jobs need the lists:write and profiles:write scopes)\n',
              ),
          })
        : undefined;
    for (const job of resumedJobs) jobs?.resume(job);

    /** Rows that share no value with another row: only those may go in a bulk job. */
    const alone = bulk && newJobs ? rowsAlone(tasks.values(), bulk.keysOf) : new Set<number>();

    /** The chunk's lookups, or undefined when they failed (its rows then look up one by one). */
    const lookUpTogether = async (chunk: Task[]) => {
      if (chunk.length === 0 || stop.signal.aborted) return undefined;
      try {
        return await command.lookUp(chunk, session, dryRun);
      } catch (error) {
        stopOn(error);
        if (!stop.signal.aborted) {
          io.stderr.write(
            `identity-sync: the lookups of lines ${chunk[0]?.line}–${chunk.at(-1)?.line} failed together` +
              ` (${printable((error as Error).message)}); each of those rows looks its customer up on its own\n`,
          );
        }
        return undefined;
      } finally {
        phases.lookedUp(chunk.length);
      }
    };

    /** Sends what can go in bulk jobs; returns the rest, to write one by one. */
    const sendToBulk = async (chunk: Task[], lookups: Lookups | undefined): Promise<Task[]> => {
      if (!bulk || !jobs || !newJobs || lookups === undefined) return chunk;
      // Planning reads each row's state (DynamoDB with SYNC_STATE_TABLE): a few rows at once. A row
      // that cannot be planned for a job (its state unreadable, say) is written on its own.
      const plans = await mapConcurrently(chunk, PLAN_CONCURRENCY, async (task) =>
        alone.has(task.line) && !stop.signal.aborted
          ? bulk.plan(task, session, lookups).catch(() => undefined)
          : undefined,
      );
      const rest: Task[] = [];
      for (const [i, task] of chunk.entries()) {
        const planned = plans[i];
        const row = keys.get(task.line) as string;
        if (!planned || !(await jobs.add({ line: task.line, row, ...planned } satisfies BulkEntry<unknown>)))
          rest.push(task);
      }
      return rest;
    };

    const writeOneByOne = async (chunk: Task[], lookups: Lookups | undefined) => {
      phases.queued(chunk.length);
      await runInCustomerOrder(chunk, {
        concurrency: options.concurrency,
        signal: stop.signal,
        async run(task) {
          try {
            recordTask(task, await command.run(task, session, dryRun, lookups));
          } catch (error) {
            stopOn(error);
            recordTask(task, outcomeOfError(error));
          }
          phases.written();
        },
        skip(task) {
          const reason = stopReason();
          // Ctrl-C leaves the rows not attempted without a line: the rerun does them.
          if (reason && reason.kind !== 'interrupted')
            recordTask(task, {
              outcome: 'failed',
              reason: `not attempted: ${reason.message}`,
              transient: true,
            });
        },
      });
    };

    const runChunk = async (rows: readonly InputRow[]) => {
      const chunk: Task[] = [];
      for (const row of rows) {
        const task = tasks.get(row.line) as Task | RowResult;
        if ('outcome' in task) record(task);
        else chunk.push(task);
      }
      const lookups = await lookUpTogether(chunk);
      await writeOneByOne(await sendToBulk(chunk, lookups), lookups);
    };

    for (let start = 0; start < todo.length && stopReason()?.kind !== 'interrupted'; start += CHUNK_ROWS) {
      await runChunk(todo.slice(start, start + CHUNK_ROWS));
    }
    await jobs?.flush();
    await jobs?.drain();
    // Looked at afresh now that every job is done, a chunk at a time, each on its own.
    for (let start = 0; start < again.length && !stop.signal.aborted; start += CHUNK_ROWS) {
      const chunk = again.slice(start, start + CHUNK_ROWS);
      await writeOneByOne(chunk, await lookUpTogether(chunk));
    }
    progress.finish();
    await results.finish();

    const status = jobs?.status();
    const reason = stopReason();
    const unfinished = reason?.kind === 'interrupted' || (status?.unsettled.length ?? 0) > 0;
    if (!unfinished) await journal.remove();
    if (reason && reason.kind !== 'interrupted')
      io.stderr.write(`identity-sync: ${STOPPED_BECAUSE[reason.kind]}: ${printable(reason.message)}\n`);
    for (const job of status?.unsettled ?? []) {
      io.stderr.write(
        `identity-sync: bulk import job ${printable(job.id)} (${job.rows} rows) could not be followed to its end (${printable(job.problem)});` +
          ' its rows have no result yet: run the same command again to poll it\n',
      );
    }
    const notDone = input.rows.length - [...counts.values()].reduce((sum, count) => sum + count, 0);
    io.stdout.write(
      formatSummary({
        title: `${command.name}${dryRun ? ' (dry run)' : ''} ${options.file}`,
        counts,
        elapsedMs: Date.now() - started.getTime(),
        resultsPath: options.resultsPath,
        retries: session.retries,
        earlier: results.earlier.size,
        notDone,
        bulk: status && status.jobs.size > 0 ? { ...status, note: jobsNote(status) } : undefined,
      }),
    );
    if (failedKept > 0) {
      io.stdout.write(
        `${counted(failedKept, 'row')} that failed in an earlier run ${failedKept === 1 ? 'was' : 'were'} not sent again: --retry-failed sends them\n`,
      );
    }
    const identifiers = new Map(
      input.rows.flatMap((row) => ('values' in row ? [[row.line, maskedIdentifiers(row.values)]] : [])),
    );
    io.stdout.write(formatAttention(finished.values(), (line) => identifiers.get(line), options.resultsPath));
    if (reason?.kind === 'interrupted') {
      io.stderr.write(
        `identity-sync: interrupted with ${notDone} rows not done; run the same command again to resume\n`,
      );
      return EXIT_INTERRUPTED;
    }
    return notDone > 0 ? EXIT_ATTENTION : exitCodeOf(counts);
  } finally {
    session.close();
  }
}

/** Why the rows an earlier run finished against another Klaviyo account or tenant are not skipped. */
export const anotherTargetNote = (resultsPath: string, rows: number) =>
  `identity-sync: ${counted(rows, 'row')} in ${resultsPath} were done against another Klaviyo account, base URL or tenant` +
  ' (or by a version that did not record which): they are not skipped; this run starts afresh';

/** Rows planned for bulk jobs at once (each reads the customer's state). */
const PLAN_CONCURRENCY = 16;

const STOPPED_BECAUSE = {
  key: 'Klaviyo refused the API key, so the run stopped',
  unreachable:
    'Klaviyo did not answer (after retrying), so the run stopped; run the same command again to resume',
};

/** What a row's key is made of: its values, or what was wrong with it. */
const contentOf = (row: InputRow) => ('values' in row ? row.values : row.problem);

/**
 * The rows that share no key (customer id, identifier) with any other row: a bulk job imports its
 * profiles in no order we can rely on, so two rows about the same customer or value never go in one.
 */
function rowsAlone<Task extends Row>(tasks: Iterable<Task | RowResult>, keysOf: (task: Task) => string[]) {
  const seen = new Map<string, number>();
  const valid = [...tasks].filter((task): task is Task => !('outcome' in task));
  for (const task of valid) for (const key of keysOf(task)) seen.set(key, (seen.get(key) ?? 0) + 1);
  return new Set(
    valid.filter((task) => keysOf(task).every((key) => seen.get(key) === 1)).map((task) => task.line),
  );
}

/**
 * The progress lines of the phases: lookups (of the `toLookUp` rows, and of those looked at again
 * after their job), bulk jobs, per-profile writes (their total grows as rows are sent their way).
 */
function phaseCounters(progress: Progress, toLookUp: number) {
  const lookups = { done: 0, total: toLookUp };
  const writes = { done: 0, total: 0 };
  return {
    lookedUp(rows: number) {
      lookups.done += rows;
      lookups.total = Math.max(lookups.total, lookups.done);
      progress.phase('lookups', { ...lookups, unit: 'rows' });
    },
    queued(rows: number) {
      writes.total += rows;
      progress.phase('per profile', { ...writes, unit: 'rows' });
    },
    written() {
      writes.done++;
      progress.phase('per profile', { ...writes, unit: 'rows' });
    },
    bulk(status: BulkStatus) {
      // As Klaviyo counts them: profiles imported or failed, in the jobs so far.
      let done = 0;
      for (const job of status.jobs.values()) done += job.completed + job.failed;
      progress.phase('bulk jobs', { done, total: status.profiles, unit: 'profiles', note: jobsNote(status) });
    },
  };
}

/** `3 jobs: 1 complete, 2 processing` */
export function jobsNote({ jobs }: BulkStatus): string {
  const byStatus = new Map<string, number>();
  for (const { status } of jobs.values()) byStatus.set(status, (byStatus.get(status) ?? 0) + 1);
  const parts = [...byStatus].map(([status, count]) => `${count} ${status}`);
  return `${counted(jobs.size, 'job')}${parts.length > 0 ? `: ${parts.join(', ')}` : ''}`;
}

function requireColumns(columns: string[] | undefined, required: string[][]) {
  if (!columns) return;
  const missing = required.filter((names) => !names.some((name) => columns.includes(name)));
  if (missing.length > 0) {
    const wanted = missing.map((names) => names.join(' or ')).join(', ');
    const separators =
      columns.length === 1
        ? '; columns are separated by commas, semicolons or tabs, and this header has none'
        : '';
    throw new UsageError(
      `the CSV header has no ${wanted} column (it has: ${columns.join(', ')}${separators})`,
    );
  }
}
