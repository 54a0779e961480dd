import { parseArgs } from 'node:util';
import type { BulkImportError, BulkImportProfile } from '../lib/ports.js';
import type { Settled } from './bulk-jobs.js';
import type { InputRow } from './input.js';
import { positiveNumber, UsageError } from './io.js';
import type { RowResult } from './results.js';
import type { RowContext } from './rows.js';
import type { Session } from './session.js';

/**
 * Rows read and worked through together. The lookups of a chunk's rows are made before any of them
 * runs, a few `any(…)` queries of up to 100 values for the whole chunk, and its results are written
 * in input order once it is done. Large, because each chunk's edge is a short pause (its lookups
 * before it, its last customers finishing after it): 500 rows need at most 5 queries a field.
 */
export const CHUNK_ROWS = 500;

/**
 * Files with fewer rows never use bulk import jobs: their per-profile writes take at most about a
 * minute and a half at Klaviyo's limits (750 a minute per endpoint), and a job's asynchronous
 * round trip (queued, processing, complete, then its import errors) would not be quicker. Klaviyo
 * also advises its bulk import for large volumes only. `--bulk-min-rows` changes it.
 */
const BULK_MIN_ROWS = 1_000;

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
                         Klaviyo's limits, 75/s and 750/min; profile merges and bulk import
                         jobs 10/s and 150/min)
  --secret-id ID         read the Klaviyo key from this Secrets Manager secret (its full id)
                         instead of KLAVIYO_API_KEY (see Tenant and key)
  --no-bulk              write every row on its own, never through bulk import jobs
  --bulk-min-rows N      use bulk import jobs for files of at least N rows (default: ${BULK_MIN_ROWS})
  --restart              ignore what an earlier run of this command left in the results file
  --retry-failed         send the rows an earlier run failed with Klaviyo's refusal again
  -h, --help             this help

Requests: rows are read ${CHUNK_ROWS} at a time; before a chunk's rows run, the lookups of its
customers are made together, in any(…) queries of up to 100 values (apply: by external_id, then
email, then phone for those still not found, about 3 requests per 100 new customers; bind: by
email, then phone). Then each row that changes something costs its write. A customer whose
profile the sync state records is not looked up, and a row that changes nothing costs nothing.
Bulk: in files of ${BULK_MIN_ROWS} rows or more, the writes whose outcome the lookups settle in
advance go through Klaviyo's bulk profile import jobs, up to 10,000 profiles a job (bind: setting
external_id on a profile found without one; apply: creating a customer found nowhere), for
customers with a single row whose identifiers no other row of the file has. Each job is polled
until done, and each of its import errors is reported on its own row. Every other row (identifier
changes, conflicts, merges) is written on its own, with the worker's guards.
Resume: results are appended as rows finish; when a run stops (Ctrl-C, a crash, a lost network),
running the same command again skips the rows already done: a results line whose input line
number and "row" key (a hash of the command, tenant, Klaviyo target, mode and the row's content)
match the file now. Rows that failed for a passing cause (Klaviyo unreachable, throttled, 5xx,
not attempted) run again; rows Klaviyo refused only with --retry-failed. Rows done against another Klaviyo account, base URL
or tenant are done again (the run says so). Bulk jobs in flight are kept in <results>.jobs
and polled again.
Tenant and key: with TENANT_SECRET_PREFIX, the key is the tenant's own, from its secret
(TENANT_SECRET_PREFIX + tenant + /klaviyo); a tenant without one is refused, and so is a KLAVIYO_API_KEY or
--secret-id holding another key. Without it, a bare KLAVIYO_API_KEY is a trial run: only for
DEFAULT_TENANT or a tenant of TENANT_POLICIES or SHOP_TENANTS, and never with SYNC_STATE_TABLE.
Pacing: with SYNC_STATE_TABLE, the run draws on the tenant's request quota that the deployed
workers share through that table (KLAVIYO_QUOTA_SHARE of Klaviyo's limits), so together they stay
under the account's limits; --rate-per-second caps the run on top. Without it, the run paces
itself to Klaviyo's limits (or --rate-per-second) as if it were alone on the account.

Environment: TENANT_SECRET_PREFIX, KLAVIYO_API_KEY, KLAVIYO_BASE_URL, KLAVIYO_REVISION;
SYNC_STATE_TABLE to share the staleness guard, audit trail and request quota with the deployed
worker in DynamoDB (in memory without it); KLAVIYO_QUOTA_SHARE, TENANT_POLICIES, DEFAULT_TENANT, DEFAULT_PHONE_REGION as for
the service.
Progress goes to stderr (a line per phase: lookups, bulk jobs, per-profile writes), the summary
to stdout, then the rows that need attention (the first 20: line, externalId, outcome, reason,
identifiers masked). A dry run counts what would happen: would-create, would-patch, would-park…. Exit code: 0 when no row needs attention, 1 when a row is invalid, failed, parked (in a dry
run: would be) or in conflict (or has no outcome yet), 2 for usage errors, 130 after Ctrl-C.`;

export interface BatchOptions {
  file: string;
  tenant?: string;
  region?: string;
  dryRun: boolean;
  resultsPath: string;
  concurrency: number;
  ratePerSecond?: number;
  secretId?: string;
  /** False with --no-bulk. */
  bulk: boolean;
  bulkMinRows: number;
  /** --restart: results an earlier run left do not count. */
  restart: boolean;
  /** --retry-failed: rows an earlier run failed for good (Klaviyo refused them) run again. */
  retryFailed: boolean;
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
      'no-bulk': { type: 'boolean', default: false },
      'bulk-min-rows': { type: 'string', default: String(BULK_MIN_ROWS) },
      restart: { type: 'boolean', default: false },
      'retry-failed': { type: 'boolean', default: false },
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
    bulk: !values['no-bulk'],
    bulkMinRows: positiveNumber('--bulk-min-rows', values['bulk-min-rows'], { integer: true }),
    restart: values.restart,
    retryFailed: values['retry-failed'],
  };
}

/** What every command's task has: its input line and its customer. */
export type BatchRow = { line: number; externalId: string };

/** What makes `apply` and `bind` different: how a row becomes a task, and what a task does. */
export interface BatchCommand<Task extends BatchRow, Lookups> {
  name: string;
  /** The summary's rows, in order. */
  outcomes: readonly string[];
  /** A dry run's summary rows, in order: what the rows would come to. */
  dryRunOutcomes: readonly string[];
  /** CSV columns that must be present: one name of each group (lower-cased). */
  requiredColumns: string[][];
  taskOf(row: InputRow, context: RowContext): Task | RowResult;
  /**
   * The lookups a chunk of tasks needs, made together before any of them runs. When they fail
   * (but for a refused key) the chunk's tasks run with `undefined` and look up one by one.
   */
  lookUp(tasks: readonly Task[], session: Session, dryRun: boolean): Promise<Lookups>;
  /** The row's outcome; throws for failures, which `rowResultOfError` (pipeline/row-result-of-error.ts) turns into results. */
  run(task: Task, session: Session, dryRun: boolean, lookups: Lookups | undefined): Promise<RowOutcome>;
  /** The writes this command can send through bulk import jobs; none without. */
  bulk?: BulkWrites<Task, Lookups>;
}

/** What a row came to, as a command says it. */
export type RowOutcome = Omit<RowResult, 'line' | 'externalId' | 'row'>;

/**
 * How a command's rows go through bulk import jobs. `Planned` is what settling a row needs besides
 * its task: plain JSON, kept in the jobs file so a rerun can settle a job an earlier run started.
 */
// biome-ignore lint/suspicious/noExplicitAny: each command has its own Planned, opaque to the run.
export interface BulkWrites<Task, Lookups, Planned = any> {
  /** Values the row writes or is found by: a row shares none with another row to go in a job. */
  keysOf(task: Task): string[];
  /** The row's write as a job's profile, when the lookups settle its outcome; else undefined. */
  plan(
    task: Task,
    session: Session,
    lookups: Lookups,
  ): Promise<{ planned: Planned; profile: BulkImportProfile } | undefined>;
  /** What became of a finished job's rows (each with its import error, if any). */
  settle(
    jobId: string,
    done: { task: Task; planned: Planned; error?: BulkImportError }[],
    session: Session,
  ): Promise<Settled<RowOutcome>[]>;
}
