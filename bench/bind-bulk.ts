import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { bind } from '../cli/commands/bind.js';
import { KLAVIYO_PROFILE_LIMITS } from '../lib/klaviyo/limits.js';
import { type KlaviyoSandbox, SANDBOX_API_KEY, startKlaviyoSandbox } from '../local/klaviyo-sandbox.js';
import { benchIo, endpointTable } from './requests-by-endpoint.js';

/**
 * `npm run bench:bind [-- --rows 100000 --job-delay-ms 1000 --per-row-sample 0]`: `identity-sync
 * bind` of a Shopify customer export of N rows (default 100,000) against the Klaviyo sandbox in
 * this process, with Klaviyo's limits (profiles 75/s and 750/min per endpoint; bulk import jobs
 * 10/s and 150/min per endpoint) and jobs that take --job-delay-ms to run. 90% of the customers
 * have a profile Klaviyo knows by email without an external_id; 10% have none (not found).
 *
 * Prints the elapsed time, requests per endpoint (with 429s and the busiest fixed windows), the
 * bulk import jobs used, and what today's per-row path (`--no-bulk`: the same lookups, then one
 * PATCH per bound row) would take at the same limits: computed from 750 PATCHes a minute, and
 * measured on a sample of rows with --per-row-sample N (scaled up to N rows). Goal: under 10 min.
 */
const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '100000' },
    'job-delay-ms': { type: 'string', default: '1000' },
    'per-row-sample': { type: 'string', default: '0' },
  },
});
const rows = Number(values.rows);
const sample = Number(values['per-row-sample']);
const GOAL_MINUTES = 10;

const bulk = await bindOnce(rows, []);
const perRowMinutes = bulk.bound / KLAVIYO_PROFILE_LIMITS.perMinute;
console.log(
  `\nbind of ${rows} rows through bulk import jobs: ${minutes(bulk.elapsedMs)} (${bulk.exitCode === 0 ? 'exit 0' : `exit ${bulk.exitCode}`})`,
);
console.table(bulk.table);
console.log(`bulk import jobs: ${bulk.jobs} (${bulk.bound} profiles bound)`);
console.log(
  `per-row path at the same limits, computed: ${bulk.bound} PATCHes ÷ ${KLAVIYO_PROFILE_LIMITS.perMinute}/min = ${perRowMinutes.toFixed(1)} min, plus the same lookups`,
);
if (sample > 0) {
  const perRow = await bindOnce(sample, ['--no-bulk']);
  console.log(
    `per-row path measured on ${sample} rows: ${minutes(perRow.elapsedMs)}, so about ${minutes((perRow.elapsedMs * rows) / sample)} for ${rows} rows` +
      // Klaviyo's first minute lets 750 writes through at once: only a sample longer than that shows the steady rate.
      (perRow.elapsedMs < 60_000
        ? ' (the sample took under a minute: it ran on the burst allowance, so this is low)'
        : ''),
  );
}
const met = bulk.elapsedMs < GOAL_MINUTES * 60_000;
console.log(`goal: under ${GOAL_MINUTES} min for ${rows} rows: ${met ? 'met' : 'missed'}`);

/** One bind run over a fresh sandbox and a fresh file of `count` rows. */
async function bindOnce(count: number, args: string[]) {
  const sandbox = await startKlaviyoSandbox({
    bulkImportDelayMs: Number(values['job-delay-ms']),
    maxRecordedRequests: Number.POSITIVE_INFINITY,
  });
  try {
    const file = await exportOf(sandbox, count);
    process.stderr.write(`Sandbox at ${sandbox.url} with Klaviyo's limits; ${count} rows in ${file}\n`);
    const started = Date.now();
    const exitCode = await bind(
      [file, '--restart', ...args],
      benchIo({ KLAVIYO_API_KEY: SANDBOX_API_KEY, KLAVIYO_BASE_URL: sandbox.url }),
    );
    const elapsedMs = Date.now() - started;
    const jobs = sandbox.bulkImportJobs();
    return {
      elapsedMs,
      exitCode,
      table: endpointTable(sandbox.requests),
      jobs: jobs.length,
      bound: sandbox.listProfiles().filter((profile) => profile.external_id !== null).length,
    };
  } finally {
    await sandbox.stop();
  }
}

/** Shopify's customer export: 9 in 10 customers known to Klaviyo by email only, the 10th unknown. */
async function exportOf(sandbox: KlaviyoSandbox, count: number): Promise<string> {
  const lines = ['Customer ID,First Name,Last Name,Email,Phone'];
  for (let i = 0; i < count; i++) {
    const email = `customer.${i}@example.com`;
    if (i % 10 !== 9) sandbox.seedProfile({ email });
    lines.push(`${7_000_000_000_000 + i},Ada,Lovelace,${email},`);
  }
  const dir = await mkdtemp(join(tmpdir(), 'bind-bulk-'));
  const file = join(dir, `customers_export-${count}.csv`);
  await writeFile(file, `${lines.join('\n')}\n`);
  return file;
}

function minutes(ms: number): string {
  const seconds = ms / 1000;
  return seconds < 120 ? `${seconds.toFixed(1)} s` : `${(seconds / 60).toFixed(1)} min`;
}
