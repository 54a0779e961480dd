import { createHash } from 'node:crypto';
import { parseArgs } from 'node:util';
import type { RelayAddress } from '../../lib/duplicates/match.js';
import {
  customerLookups,
  type ProfileLookup,
  type ReviewedPair,
  reviewPairs,
} from '../../lib/duplicates/review.js';
import type { ProfilePage } from '../../lib/ports.js';
import { type Checkpoint, openCheckpoint } from '../duplicates-checkpoint.js';
import { readCustomerEmails, readRelayFile } from '../duplicates-input.js';
import { applyMerges } from '../duplicates-merge.js';
import { formatTopPairs, reportLineOf, writeReport } from '../duplicates-report.js';
import {
  type CliIo,
  counted,
  EXIT_ATTENTION,
  EXIT_INTERRUPTED,
  EXIT_OK,
  positiveNumber,
  runCommand,
  UsageError,
} from '../io.js';
import { describeTarget, targetIdOf } from '../klaviyo-key.js';
import { createProgress } from '../progress.js';
import { openSession, type Session } from '../session.js';
import { cliSettings } from '../settings.js';

const DEFAULT_MIN_CONFIDENCE = 0.9;

const USAGE = `Usage: identity-sync duplicates [options]

Finds profiles Klaviyo already holds twice: a customer's profile (it carries an external_id) and
one without any that is very likely the same person. Writes a report of the candidate pairs
(CSV and NDJSON) and changes nothing, unless --apply.
Rules (each pair has a confidence from 0 to 1):
  misspelt_domain    the customer's address at a known misspelling of its provider's domain
                     (gmial.com for gmail.com): 0.95 with the same first and last name, 0.85
                     without names to compare; never when the names differ
  local_part_typo    one keystroke apart before the @, at the same domain, local parts of 4
                     characters or more: 0.8 with the same name, 0.5 without; halved when the
                     difference is a digit (anna1, anna2: often two people); never when names differ
  marketplace_relay  an address the relay file (--relay-file) puts on an order of the customer:
                     0.95 at a known relay domain (Apple's, Amazon's), 0.85 at another
Reading: the whole account page by page (GET /api/profiles, 100 a page, paced), or with
--customers only the profiles of a customer export, looked up by email (its customers, their
addresses at each known misspelling of their domain, the relay file's addresses and customers;
100 values a request). A typo in the local part is found only by reading the whole account.
  --customers FILE      a customer export (CSV or NDJSON with an email column; Shopify's export)
  --relay-file FILE     relay addresses and their customers (CSV or NDJSON: email, externalId)
  --report PREFIX       the report: PREFIX.csv and PREFIX.ndjson (default: duplicates-<tenant>)
  --checkpoint FILE     the pages read so far (default: PREFIX.checkpoint.ndjson)
  --max-pages N         read at most N pages in this run; the next run goes on from there
  --restart             read afresh, ignoring the checkpoint
  --min-confidence C    --apply merges pairs at or above C (default: ${DEFAULT_MIN_CONFIDENCE})
  --apply               merge those pairs after showing the count and asking
  --yes                 merge without asking (no terminal needed)
  --concurrency N       customers merged into at once (default: 4)
  --tenant T            tenant whose audit trail and quota apply (default: DEFAULT_TENANT)
  --rate-per-second R   most requests per second per Klaviyo endpoint for this run
  --secret-id ID        read the Klaviyo key from this Secrets Manager secret; with
                        TENANT_SECRET_PREFIX the key is the tenant's own (as for apply)
  -h, --help            this help

Checkpoint: each page read is appended to the checkpoint file with the cursor of the next, so a
run that stops (Ctrl-C, a crash, --max-pages) goes on where it was; a finished read is reused by
later runs (so --apply merges the pairs the report shows), until --restart; one read from
another Klaviyo account, base URL or tenant is refused.
Merging (--apply) is irreversible in Klaviyo: the source profile's data moves to the customer's
profile (the destination, which keeps its external_id) and the source is deleted; there is no
unmerge. Review the report first. Each pair is read again just before its merge and refused
when the source now carries an external_id (two customers are never merged), either profile is
gone, or they changed; a source that pairs with several customers is never merged. Merges are
paced to Klaviyo's merge limits (10/s, 150/min) and each waits until Klaviyo is done; each
decision goes to the customer's audit trail (identity-sync history). Results: PREFIX.merges.ndjson.
Exit code: 0 when done, 1 when the read is unfinished or a merge was refused or failed,
2 for usage errors, 130 after Ctrl-C.`;

interface Options {
  tenant?: string;
  secretId?: string;
  ratePerSecond?: number;
  customers?: string;
  relayFile?: string;
  report?: string;
  checkpoint?: string;
  maxPages: number;
  restart: boolean;
  minConfidence: number;
  apply: boolean;
  yes: boolean;
  concurrency: number;
}

function parseOptions(args: string[]): Options | undefined {
  const { values } = parseArgs({
    args,
    options: {
      customers: { type: 'string' },
      'relay-file': { type: 'string' },
      report: { type: 'string' },
      checkpoint: { type: 'string' },
      'max-pages': { type: 'string' },
      restart: { type: 'boolean', default: false },
      'min-confidence': { type: 'string', default: String(DEFAULT_MIN_CONFIDENCE) },
      apply: { type: 'boolean', default: false },
      yes: { type: 'boolean', default: false },
      concurrency: { type: 'string', default: '4' },
      tenant: { type: 'string' },
      'rate-per-second': { type: 'string' },
      'secret-id': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return undefined;
  const minConfidence = Number(values['min-confidence']);
  if (!(minConfidence > 0 && minConfidence <= 1))
    throw new UsageError(`--min-confidence must be above 0 and at most 1, got '${values['min-confidence']}'`);
  const optional = (flag: string, text: string | undefined, integer = false) =>
    text === undefined ? undefined : positiveNumber(flag, text, { integer });
  return {
    tenant: values.tenant,
    secretId: values['secret-id'],
    ratePerSecond: optional('--rate-per-second', values['rate-per-second']),
    customers: values.customers,
    relayFile: values['relay-file'],
    report: values.report,
    checkpoint: values.checkpoint,
    maxPages: optional('--max-pages', values['max-pages'], true) ?? Number.POSITIVE_INFINITY,
    restart: values.restart,
    minConfidence,
    apply: values.apply,
    yes: values.yes,
    concurrency: positiveNumber('--concurrency', values.concurrency, { integer: true }),
  };
}

/** `identity-sync duplicates`: finds duplicate profiles, reports them, and merges on request. */
export async function duplicates(args: string[], io: CliIo): Promise<number> {
  return runCommand(io, USAGE, async () => {
    const options = parseOptions(args);
    if (!options) {
      io.stdout.write(`${USAGE}\n`);
      return EXIT_OK;
    }
    if (options.apply && !options.yes && !io.stdin?.isTTY)
      throw new UsageError('--apply asks before merging: pass --yes when no terminal can answer');
    // The tenant and its key first: an unknown tenant, or a key not its own, stops before anything is read.
    const session = await openSession(options, cliSettings(io.env));
    try {
      const relays = options.relayFile ? await readRelayFile(options.relayFile, io) : [];
      const lookups = options.customers
        ? customerLookups(await readCustomerEmails(options.customers), relays)
        : undefined;
      return await findDuplicates(options, { session, relays, lookups }, io);
    } finally {
      session.close();
    }
  });
}

interface Inputs {
  session: Session;
  relays: RelayAddress[];
  /** With --customers: the lookups that read its profiles (instead of the whole account). */
  lookups?: ProfileLookup[];
}

async function findDuplicates(options: Options, { session, relays, lookups }: Inputs, io: CliIo) {
  const { tenant } = session;
  const prefix = options.report ?? `duplicates-${tenant}`;
  const checkpointPath = options.checkpoint ?? `${prefix}.checkpoint.ndjson`;
  const reads = lookups
    ? `customers:${createHash('sha256').update(JSON.stringify(lookups)).digest('hex').slice(0, 16)}`
    : 'account';
  const target = targetIdOf(session.target, tenant);
  const checkpoint = await openCheckpoint(
    checkpointPath,
    { tenant, reads, target },
    { restart: options.restart },
  );
  io.stderr.write(
    `identity-sync duplicates: tenant ${tenant} at ${describeTarget(session.target)}, reading ` +
      `${lookups ? `the profiles of ${options.customers} (${lookups.length} lookups)` : 'the whole account'};` +
      ` requests paced ${session.pacing}; checkpoint ${checkpointPath}\n` +
      `identity-sync: ${checkpointPath} keeps the profiles' emails and names (phones left out) so a run can resume; delete it when done\n`,
  );
  if (checkpoint.pages > 0) {
    io.stderr.write(
      `identity-sync: ${checkpoint.done ? 'reusing the finished read' : 'resuming'}: ${counted(checkpoint.pages, 'page')}` +
        ` (${checkpoint.profiles.size} profiles) read by an earlier run${checkpoint.done ? ' (--restart reads afresh)' : ''}\n`,
    );
  }
  const pagesBefore = checkpoint.pages;
  const stopped = await readPages(
    checkpoint,
    pageReader(session, lookups),
    { maxPages: options.maxPages, totalPages: lookups?.length },
    io,
  );
  const readNow = `${counted(checkpoint.profiles.size, 'profile')} in ${counted(checkpoint.pages, 'page')} (${checkpoint.pages - pagesBefore} read by this run)`;
  if (!checkpoint.done) {
    io.stdout.write(
      `Read ${readNow}, not all yet: ${stopped === 'interrupted' ? 'interrupted' : `--max-pages ${options.maxPages} reached`}.` +
        ` Run the same command again to go on from ${checkpointPath}.\n`,
    );
    return stopped === 'interrupted' ? EXIT_INTERRUPTED : EXIT_ATTENTION;
  }

  const pairs = reviewPairs([...checkpoint.profiles.values()], relays, options.minConfidence);
  const report = { csv: `${prefix}.csv`, ndjson: `${prefix}.ndjson` };
  await writeReport(report, pairs.map(reportLineOf));
  io.stdout.write(`Read ${readNow}.\n${formatFound(pairs, options.minConfidence)}\n`);
  io.stdout.write(formatTopPairs(pairs, report.csv));
  io.stdout.write(`Report: ${report.csv} and ${report.ndjson}.\n`);
  if (!options.apply) return EXIT_OK;
  return applyMerges(
    pairs.filter((pair) => pair.verdict === 'merge'),
    { ...options, resultsPath: `${prefix}.merges.ndjson` },
    session,
    io,
  );
}

/** Reads one page of what the run reads: the account's next page, or the next lookup. */
type PageReader = (cursor: string | undefined) => Promise<ProfilePage>;

function pageReader(session: Session, lookups: ProfileLookup[] | undefined): PageReader {
  const { scan } = session;
  if (!scan) throw new Error('this Klaviyo client cannot read profiles page by page');
  if (!lookups) return (cursor) => scan.profilePage(cursor);
  // A lookup's page is the lookup's number; the cursor names the next one.
  return async (cursor) => {
    const index = Number(cursor ?? 0);
    const lookup = lookups[index];
    const profiles = lookup ? await scan.scanProfilesAmong(lookup.field, lookup.values) : [];
    return { profiles, ...(index + 1 < lookups.length ? { next: String(index + 1) } : {}) };
  };
}

/**
 * Reads pages until the last, `maxPages` in this run, or Ctrl-C; each page goes to the checkpoint
 * as it comes. An account's page count is not known before its last page: its progress counts the
 * pages read, with one more to come until then.
 */
async function readPages(
  checkpoint: Checkpoint,
  read: PageReader,
  { maxPages, totalPages }: { maxPages: number; totalPages?: number },
  io: CliIo,
): Promise<'done' | 'max-pages' | 'interrupted'> {
  if (checkpoint.done) return 'done';
  const progress = createProgress({ label: 'scan', total: 1, output: io.stderr });
  const showPages = () =>
    progress.phase('pages', {
      done: checkpoint.pages,
      total: totalPages ?? checkpoint.pages + (checkpoint.done ? 0 : 1),
      unit: 'pages',
      note: `${checkpoint.profiles.size} profiles`,
    });
  showPages();
  try {
    for (let pages = 0; !checkpoint.done; pages++) {
      if (io.signal?.aborted) return 'interrupted';
      if (pages >= maxPages) return 'max-pages';
      const page = await read(checkpoint.next);
      await checkpoint.append({ profiles: page.profiles, next: page.next ?? null });
      showPages();
      progress.refresh();
    }
    progress.advance();
    return 'done';
  } finally {
    progress.finish();
  }
}

/** `2 candidate pairs: …; 1 to merge with --apply (confidence ≥ 0.9), …` */
function formatFound(pairs: readonly ReviewedPair[], minConfidence: number): string {
  if (pairs.length === 0) return 'No candidate pairs found.';
  const count = (values: string[]) => {
    const counts = new Map<string, number>();
    for (const value of values) counts.set(value, (counts.get(value) ?? 0) + 1);
    return counts;
  };
  const byRule = [...count(pairs.map((pair) => pair.rule))].map(([rule, n]) => `${n} ${rule}`);
  const verdicts = count(pairs.map((pair) => pair.verdict));
  const ambiguous = verdicts.get('ambiguous_source') ?? 0;
  return (
    `${counted(pairs.length, 'candidate pair')} (${byRule.join(', ')}):` +
    ` ${verdicts.get('merge') ?? 0} to merge with --apply (confidence at least ${minConfidence}),` +
    ` ${verdicts.get('below_min_confidence') ?? 0} below it` +
    `${ambiguous > 0 ? `, ${ambiguous} whose source pairs with several customers (never merged)` : ''}.`
  );
}
