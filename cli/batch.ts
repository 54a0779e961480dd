import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import { IdentitySyncError } from '../lib/errors.js';
import { ChangeParkedError, IdentifierHeldError } from '../lib/sync/sync-identity-change.js';
import { type InputRow, readInputFile } from './input.js';
import { type CliIo, EXIT_OK, runCommand, UsageError } from './io.js';
import { createProgress } from './progress.js';
import { exitCodeOf, formatSummary, openResultsFile, type RowResult, tally } from './results.js';
import type { RowContext } from './rows.js';
import { runInCustomerOrder } from './run-in-order.js';
import { cliSettings, isKeyRefused, openSession, type Session } from './session.js';

/**
 * Rows read and worked through together. The lookups of a chunk's rows are made before any of them
 * runs, a few `any(…)` queries of up to 100 values for the whole chunk, and its results are written
 * in input order once it is done. Large, because each chunk's edge is a short pause (its lookups
 * before it, its last customers finishing after it): 500 rows need at most 5 queries a field.
 */
export const CHUNK_ROWS = 500;

/** The options `apply` and `bind` share: both read a file of rows and work through them the same way. */
export const BATCH_OPTIONS_HELP = `Options:
  --tenant T             tenant whose policies, state, audit trail and quota apply
                         (default: DEFAULT_TENANT)
  --region R             region of phone numbers written without a country code
                         (default: DEFAULT_PHONE_REGION, else US)
  --dry-run              look up and decide, but write nothing to Klaviyo
  --results PATH         one NDJSON line per input row, in input order
                         (default: <file>.results.ndjson)
  --concurrency N        customers worked on at once (default: 4)
  --rate-per-second R    most requests per second per Klaviyo endpoint for this run (default:
                         Klaviyo's limits, 75/s and 750/min; profile merges 10/s and 150/min)
  --secret-id ID         read the Klaviyo key from this Secrets Manager secret (its full id)
                         instead of KLAVIYO_API_KEY
  -h, --help             this help

Requests: rows are read ${CHUNK_ROWS} at a time; before a chunk's rows run, the lookups of its
customers are made together, in any(…) queries of up to 100 values (apply: by external_id, then
email, then phone for those still not found, about 3 requests per 100 new customers; bind: by
email, then phone). Then each row that changes something costs its write. A customer whose
profile the sync state records is not looked up, and a row that changes nothing costs nothing.
Pacing: with SYNC_STATE_TABLE, the run draws on the tenant's request quota that the deployed
workers share through that table (KLAVIYO_QUOTA_SHARE of Klaviyo's limits), so together they stay
under the account's limits; --rate-per-second caps the run on top. Without it, the run paces
itself to Klaviyo's limits (or --rate-per-second) as if it were alone on the account.

Environment: KLAVIYO_API_KEY, KLAVIYO_BASE_URL, KLAVIYO_REVISION; SYNC_STATE_TABLE to share the
staleness guard, audit trail and request quota with the deployed worker in DynamoDB (in memory
without it); KLAVIYO_QUOTA_SHARE, TENANT_POLICIES, DEFAULT_TENANT, DEFAULT_PHONE_REGION as for
the service.
Progress goes to stderr, the summary to stdout. Exit code: 0 when no row needs attention,
1 when a row is invalid, failed, parked or in conflict, 2 for usage errors.`;

export interface BatchOptions {
  file: string;
  tenant?: string;
  region?: string;
  dryRun: boolean;
  resultsPath: string;
  concurrency: number;
  ratePerSecond?: number;
  secretId?: string;
}

/** The options, or undefined when help was asked for. */
export function parseBatchArgs(args: string[]): BatchOptions | undefined {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      tenant: { type: 'string' },
      region: { type: 'string' },
      'dry-run': { type: 'boolean', default: false },
      results: { type: 'string' },
      concurrency: { type: 'string', default: '4' },
      'rate-per-second': { type: 'string' },
      'secret-id': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return undefined;
  const [file, ...extra] = positionals;
  if (!file) throw new UsageError('the input file is missing');
  if (extra.length > 0) throw new UsageError(`one input file at a time, got also ${extra.join(' ')}`);
  const region = values.region?.toUpperCase();
  if (region !== undefined && !/^[A-Z]{2}$/.test(region)) {
    throw new UsageError('--region must be an ISO 3166 alpha-2 region such as US');
  }
  return {
    file,
    tenant: values.tenant,
    region,
    dryRun: values['dry-run'],
    resultsPath: values.results ?? `${file}.results.ndjson`,
    concurrency: positiveNumber('--concurrency', values.concurrency, { integer: true }),
    ratePerSecond:
      values['rate-per-second'] === undefined
        ? undefined
        : positiveNumber('--rate-per-second', values['rate-per-second']),
    secretId: values['secret-id'],
  };
}

function positiveNumber(flag: string, text: string, { integer = false } = {}): number {
  const value = Number(text);
  if (!(value > 0) || (integer && !Number.isInteger(value))) {
    throw new UsageError(`${flag} must be a positive ${integer ? 'integer' : 'number'}, got '${text}'`);
  }
  return value;
}

/** What makes `apply` and `bind` different: how a row becomes a task, and what a task does. */
export interface BatchCommand<Task extends { line: number; externalId: string }, Lookups> {
  name: string;
  /** The summary's rows, in order. */
  outcomes: readonly string[];
  /** CSV columns that must be present: one name of each group (lower-cased). */
  requiredColumns: string[][];
  taskOf(row: InputRow, context: RowContext): Task | RowResult;
  /**
   * The lookups a chunk of tasks needs, made together before any of them runs. When they fail
   * (but for a refused key) the chunk's tasks run with `undefined` and look up one by one.
   */
  lookUp(tasks: readonly Task[], session: Session, dryRun: boolean): Promise<Lookups>;
  /** The row's outcome; throws for failures, which `outcomeOfError` turns into results. */
  run(
    task: Task,
    session: Session,
    dryRun: boolean,
    lookups: Lookups | undefined,
  ): Promise<Omit<RowResult, 'line' | 'externalId'>>;
}

/** A command that runs `command` over a file (apply, bind): `--help` prints `usage`. */
export function batchCommandLine<Task extends { line: number; externalId: string }, Lookups>(
  usage: string,
  command: BatchCommand<Task, Lookups>,
): (args: string[], io: CliIo) => Promise<number> {
  return (args, io) =>
    runCommand(io, usage, async () => {
      const options = parseBatchArgs(args);
      if (!options) {
        io.stdout.write(`${usage}\n`);
        return EXIT_OK;
      }
      return runBatch(command, options, io);
    });
}

/**
 * Reads the file and works through its rows a chunk at a time (paced, `concurrency` customers at
 * once, each customer's rows in file order), and reports: progress on stderr, a results line per
 * row in input order, the summary on stdout. Returns the exit code.
 */
export async function runBatch<Task extends { line: number; externalId: string }, Lookups>(
  command: BatchCommand<Task, Lookups>,
  options: BatchOptions,
  io: CliIo,
): Promise<number> {
  const settings = cliSettings(io.env);
  const input = await readInputFile(options.file);
  requireColumns(input.columns, command.requiredColumns);
  // Sends nothing to Klaviyo yet; a missing key stops the run before the results file is replaced.
  const session = await openSession(options, settings);
  try {
    const results = await openResultsFile(options.resultsPath);
    const dryRun = options.dryRun || session.policies.dryRun;
    const context: RowContext = {
      tenant: session.tenant,
      region: options.region ?? settings.DEFAULT_PHONE_REGION,
      fileName: basename(options.file),
      now: () => new Date(),
    };
    io.stderr.write(
      `identity-sync ${command.name}: ${input.rows.length} rows of ${options.file} for tenant ${session.tenant}` +
        ` at ${settings.KLAVIYO_BASE_URL}${dryRun ? ' (dry run: nothing is written)' : ''}; state ${session.description};` +
        ` requests paced ${session.pacing}\n`,
    );

    const started = Date.now();
    const counts = tally(command.outcomes, []);
    const progress = createProgress({ label: command.name, total: input.rows.length, output: io.stderr });
    const keyRefused = new AbortController();

    /** The chunk's lookups, or undefined when they failed (its rows then look up one by one). */
    const lookUpTogether = async (tasks: Task[]) => {
      if (tasks.length === 0 || keyRefused.signal.aborted) return undefined;
      try {
        return await command.lookUp(tasks, session, dryRun);
      } catch (error) {
        if (isKeyRefused(error)) keyRefused.abort((error as Error).message);
        else {
          io.stderr.write(
            `identity-sync: the lookups of lines ${tasks[0]?.line}–${tasks.at(-1)?.line} failed together` +
              ` (${(error as Error).message}); each of those rows looks its customer up on its own\n`,
          );
        }
        return undefined;
      }
    };

    const runChunk = async (rows: InputRow[]): Promise<RowResult[]> => {
      const done: RowResult[] = [];
      const record = (result: RowResult) => {
        done.push(result);
        counts.set(result.outcome, (counts.get(result.outcome) ?? 0) + 1);
        progress.advance();
      };
      const tasks: Task[] = [];
      for (const row of rows) {
        const task = command.taskOf(row, context);
        if ('outcome' in task) record(task);
        else tasks.push(task);
      }
      const lookups = await lookUpTogether(tasks);
      await runInCustomerOrder(tasks, {
        concurrency: options.concurrency,
        signal: keyRefused.signal,
        async run(task) {
          const ids = { line: task.line, externalId: task.externalId };
          try {
            record({ ...ids, ...(await command.run(task, session, dryRun, lookups)) });
          } catch (error) {
            if (isKeyRefused(error)) keyRefused.abort((error as Error).message);
            record({ ...ids, ...outcomeOfError(error) });
          }
        },
        skip: (task) =>
          record({
            line: task.line,
            externalId: task.externalId,
            outcome: 'failed',
            reason: `not attempted: ${keyRefused.signal.reason}`,
          }),
      });
      return done.sort((a, b) => a.line - b.line);
    };

    for (let start = 0; start < input.rows.length; start += CHUNK_ROWS) {
      for (const result of await runChunk(input.rows.slice(start, start + CHUNK_ROWS))) results.write(result);
    }
    progress.finish();
    await results.close();

    if (keyRefused.signal.aborted) {
      io.stderr.write(
        `identity-sync: Klaviyo refused the API key, so the run stopped: ${keyRefused.signal.reason}\n`,
      );
    }
    io.stdout.write(
      formatSummary({
        title: `${command.name}${dryRun ? ' (dry run)' : ''} ${options.file}`,
        counts,
        elapsedMs: Date.now() - started,
        resultsPath: options.resultsPath,
        retries: session.retries,
      }),
    );
    return exitCodeOf(counts);
  } finally {
    session.close();
  }
}

function requireColumns(columns: string[] | undefined, required: string[][]) {
  if (!columns) return;
  const missing = required.filter((names) => !names.some((name) => columns.includes(name)));
  if (missing.length > 0) {
    const wanted = missing.map((names) => names.join(' or ')).join(', ');
    throw new UsageError(`the CSV header has no ${wanted} column (it has: ${columns.join(', ')})`);
  }
}

/**
 * A row's error as its result. Parked: the tenant's policy parks it, or another customer's profile
 * holds an identifier it needs (the worker would retry that a few times; a CLI run has no queue).
 */
export function outcomeOfError(error: unknown): Pick<RowResult, 'outcome' | 'reason' | 'profileId'> {
  if (error instanceof IdentifierHeldError) {
    return {
      outcome: 'parked',
      reason: `${error.reason}: profile ${error.context.holderId} of another customer holds an identifier this change needs`,
      ...profileIdOf(error.context),
    };
  }
  if (error instanceof ChangeParkedError) {
    return { outcome: 'parked', reason: `${error.reason}: ${error.message}`, ...profileIdOf(error.context) };
  }
  const reason = error instanceof IdentitySyncError ? `${error.reason}: ${error.message}` : String(error);
  return { outcome: 'failed', reason };
}

const profileIdOf = (context: Record<string, unknown>) =>
  typeof context.profileId === 'string' ? { profileId: context.profileId } : {};
