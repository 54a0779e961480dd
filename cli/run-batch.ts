import { basename } from 'node:path';
import { type BatchCommand, type BatchOptions, type BatchRow, CHUNK_ROWS, parseBatchArgs } from './batch.js';
import { type CliIo, EXIT_OK, runCommand } from './io.js';
import { targetIdOf } from './klaviyo-key.js';
import { decideWrites, rowsAlone } from './pipeline/decide.js';
import { lookUpChunk } from './pipeline/look-up.js';
import { phaseCounters } from './pipeline/phases.js';
import { isResult, readRows, rowKeysOf, validateRows } from './pipeline/read.js';
import { createRecorder } from './pipeline/record.js';
import { announceRun, reportRun } from './pipeline/report.js';
import { resumeRun } from './pipeline/resume.js';
import { createRunStop } from './pipeline/stop.js';
import { writeOneByOne } from './pipeline/write.js';
import { openBulkJobs, writeInBulk } from './pipeline/write-bulk.js';
import { createProgress } from './progress.js';
import { type RowResult, tally } from './results.js';
import type { RowContext } from './rows.js';
import { openSession } from './session.js';
import { cliSettings } from './settings.js';

/** A command that runs `command` over a file (apply, bind): `--help` prints `usage`. */
export function batchCommandLine<Task extends BatchRow, Lookups>(
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

/**
 * Reads the file and works through its rows a chunk at a time, in stages (pipeline/): read the
 * rows, validate each into a task, look the chunk's customers up together, decide which writes
 * go through bulk import jobs (their outcome known in advance), write the rest one by one (paced,
 * `concurrency` customers at once, each customer's rows in file order), record each row's
 * result. It reports progress on stderr, a results line per row as it finishes (the file in
 * input order at the end), the summary on stdout. Rows an earlier run finished are skipped.
 * Returns the exit code.
 */
async function runBatch<Task extends BatchRow, Lookups>(
  command: BatchCommand<Task, Lookups>,
  options: BatchOptions,
  io: CliIo,
): Promise<number> {
  const settings = cliSettings(io.env);
  // The tenant and its key first: an unknown tenant, or a key that is not the tenant's, stops the
  // run before anything is read or written. Sends nothing to Klaviyo yet.
  const session = await openSession(options, settings);
  try {
    const input = await readRows(options.file, command.requiredColumns);
    const dryRun = options.dryRun || session.policies.dryRun;
    const started = new Date();
    const context: RowContext = {
      tenant: session.tenant,
      region: options.region ?? settings.DEFAULT_PHONE_REGION,
      fileName: basename(options.file),
      now: () => started,
    };
    const tasks = validateRows(input.rows, command.taskOf, context);
    // Rows are done only against the same Klaviyo account (base URL and key) and tenant.
    const target = targetIdOf(session.target, session.tenant);
    const keys = rowKeysOf(input.rows, { command: command.name, tenant: session.tenant, target, dryRun });
    // Bulk jobs are for real writes; --no-bulk or a dry run looks rows up afresh instead.
    const bulk = options.bulk && !dryRun && session.bulk ? command.bulk : undefined;
    const resumed = await resumeRun(input.rows, { ...options, target, keys, bulk: bulk !== undefined });
    const { results, journal, todo } = resumed;
    const newJobs = bulk !== undefined && input.rows.length >= options.bulkMinRows;
    announceRun(io, {
      command: command.name,
      file: options.file,
      rows: input.rows.length,
      session,
      dryRun,
      newJobs,
      resultsPath: options.resultsPath,
      ofAnotherTarget: resumed.ofAnotherTarget,
      earlier: results.earlier.size,
      inResumedJobs: resumed.inResumedJobs.size,
      resumedJobs: resumed.resumedJobs.length,
    });

    const progress = createProgress({
      label: command.name,
      total: todo.length + resumed.inResumedJobs.size,
      output: io.stderr,
    });
    const phases = phaseCounters(progress, todo.filter((row) => !isResult(tasks.get(row.line))).length);
    const stop = createRunStop(io);
    const recorder = createRecorder({
      results,
      keys,
      target,
      counts: tally(dryRun ? command.dryRunOutcomes : command.outcomes, results.earlier.values()),
      onRecorded: () => progress.advance(),
    });
    const bulkJobs =
      bulk && session.bulk
        ? openBulkJobs({
            bulk,
            klaviyo: session.bulk,
            journal,
            session,
            taskAt: (line) => tasks.get(line) as Task,
            signal: stop.signal,
            recorder,
            phases,
            io,
          })
        : undefined;
    for (const job of resumed.resumedJobs) bulkJobs?.jobs.resume(job);
    /** Rows that share no value with another row: only those may go in a bulk job. */
    const alone = bulk && newJobs ? rowsAlone(tasks.values(), bulk.keysOf) : new Set<number>();

    const lookUpStage = { command, session, dryRun, stop, phases, io };
    const writeStage = { command, session, dryRun, concurrency: options.concurrency, stop, recorder, phases };
    const write = async (chunk: Task[], lookups: Lookups | undefined) => {
      const single =
        bulk && bulkJobs && newJobs && lookups !== undefined
          ? await writeInBulk(
              chunk,
              await decideWrites(chunk, lookups, { bulk, session, alone, signal: stop.signal }),
              bulkJobs.jobs,
              keys,
            )
          : chunk;
      await writeOneByOne(single, lookups, writeStage);
    };

    for (const rows of chunksOf(todo, CHUNK_ROWS)) {
      if (stop.reason()?.kind === 'interrupted') break;
      const chunk: Task[] = [];
      for (const row of rows) {
        const task = tasks.get(row.line) as Task | RowResult;
        if (isResult(task)) recorder.record(task);
        else chunk.push(task);
      }
      await write(chunk, await lookUpChunk(chunk, lookUpStage));
    }
    await bulkJobs?.jobs.flush();
    await bulkJobs?.jobs.drain();
    // Rows the jobs sent back, looked at afresh now that every job is done, each on its own.
    for (const chunk of chunksOf(bulkJobs?.again ?? [], CHUNK_ROWS)) {
      if (stop.signal.aborted) break;
      await writeOneByOne(chunk, await lookUpChunk(chunk, lookUpStage), writeStage);
    }
    progress.finish();
    await results.finish();

    const status = bulkJobs?.jobs.status();
    const reason = stop.reason();
    if (reason?.kind !== 'interrupted' && (status?.unsettled.length ?? 0) === 0) await journal.remove();
    return reportRun(io, {
      title: `${command.name}${dryRun ? ' (dry run)' : ''} ${options.file}`,
      rows: input.rows,
      counts: recorder.counts,
      finished: recorder.finished,
      started,
      resultsPath: options.resultsPath,
      retries: session.retries,
      earlier: results.earlier.size,
      failedKept: [...results.earlier.values()].filter((result) => result.outcome === 'failed').length,
      status,
      reason,
    });
  } finally {
    session.close();
  }
}

/** The items `size` at a time; an array that grows meanwhile is read to its end. */
function* chunksOf<T>(items: readonly T[], size: number): Generator<T[]> {
  for (let start = 0; start < items.length; start += size) yield items.slice(start, start + size);
}
