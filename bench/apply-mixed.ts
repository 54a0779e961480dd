import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { apply } from '../cli/commands/apply.js';
import type { RowResult } from '../cli/results.js';
import {
  type KlaviyoSandbox,
  type RecordedRequest,
  SANDBOX_API_KEY,
  startKlaviyoSandbox,
} from '../local/klaviyo-sandbox.js';
import { benchIo, endpointOf, endpointTable, filterValues } from './requests-by-endpoint.js';

/**
 * `npm run bench:apply [-- --rows 10000 --job-delay-ms 1000 --no-bulk]`: `identity-sync apply` of
 * N mixed rows (default 10,000) against the Klaviyo sandbox in this process with Klaviyo's limits,
 * and what each row cost in requests, by its outcome. The rows:
 *   30% known customers whose email changed (PATCH)
 *   20% profiles Klaviyo knows by email only (PATCH that binds external_id)
 *   30% new customers with email and phone (created: a bulk import job, or profile-import with --no-bulk)
 *   10% known customers with nothing changed (unchanged)
 *    5% new customers whose email another customer's profile holds (parked)
 *    5% rows with a phone that is no phone number (invalid: no request)
 * A request is shared by the rows it served: a lookup by the rows whose values it carried, a write
 * by its row, a bulk job's start by its profiles, reading jobs by every row that went in a job.
 */
const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '10000' },
    'job-delay-ms': { type: 'string', default: '1000' },
    'no-bulk': { type: 'boolean', default: false },
  },
});
const rows = Number(values.rows);

const sandbox = await startKlaviyoSandbox({
  bulkImportDelayMs: Number(values['job-delay-ms']),
  maxRecordedRequests: Number.POSITIVE_INFINITY,
});
try {
  const { file, identifiers } = await mixedRows(sandbox, rows);
  process.stderr.write(`Sandbox at ${sandbox.url} with Klaviyo's limits; ${rows} rows in ${file}\n`);
  const started = Date.now();
  const exitCode = await apply(
    [file, '--restart', ...(values['no-bulk'] ? ['--no-bulk'] : [])],
    benchIo({ KLAVIYO_API_KEY: SANDBOX_API_KEY, KLAVIYO_BASE_URL: sandbox.url }),
  );
  const elapsedMs = Date.now() - started;
  const results = (await readFile(`${file}.results.ndjson`, 'utf8'))
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as RowResult);
  console.log(`\napply of ${rows} mixed rows: ${(elapsedMs / 1000).toFixed(1)} s, exit code ${exitCode}`);
  console.table(endpointTable(sandbox.requests));
  console.log('Requests per row, by outcome (a request shared by the rows it served):');
  console.table(costByOutcome(sandbox.requests, results, identifiers));
} finally {
  await sandbox.stop();
}

/** The file, and the identifiers of each of its rows by line (the header is line 1). */
async function mixedRows(on: KlaviyoSandbox, count: number) {
  const lines = ['externalId,email,phone'];
  const identifiers = new Map<number, string[]>();
  for (let i = 0; i < count; i++) {
    identifiers.set(i + 2, [
      `email:mixed.${i}@example.com`,
      `phone_number:+1415${String(3_000_000 + i).padStart(7, '0')}`,
    ]);
    const id = `mixed-${i}`;
    const email = `mixed.${i}@example.com`;
    const kind = i % 20;
    if (kind < 6) on.seedProfile({ external_id: id, email: `mixed.${i}.old@example.com` });
    else if (kind < 10) on.seedProfile({ email });
    else if (kind < 16) {
      lines.push(`${id},${email},+1415${String(3_000_000 + i).padStart(7, '0')}`);
      continue;
    } else if (kind < 18) on.seedProfile({ external_id: id, email });
    else if (kind === 18) on.seedProfile({ external_id: `someone-else-${i}`, email });
    else {
      lines.push(`${id},${email},12`);
      continue;
    }
    lines.push(`${id},${email},`);
  }
  const dir = await mkdtemp(join(tmpdir(), 'apply-mixed-'));
  const file = join(dir, `mixed-${count}.csv`);
  await writeFile(file, `${lines.join('\n')}\n`);
  return { file, identifiers };
}

type Kind = 'lookups' | 'writes' | 'bulk jobs' | 'other';

/** Each request's cost shared out among the rows it served, summed by the rows' outcome. */
function costByOutcome(
  requests: readonly RecordedRequest[],
  results: RowResult[],
  identifiers: Map<number, string[]>,
) {
  const byValue = new Map<string, number[]>();
  const add = (key: string, line: number) => byValue.set(key, [...(byValue.get(key) ?? []), line]);
  for (const result of results) {
    if (result.externalId) add(`external_id:${result.externalId}`, result.line);
    if (result.profileId) add(`id:${result.profileId}`, result.line);
    for (const key of identifiers.get(result.line) ?? []) add(key, result.line);
  }
  const outcomeOf = new Map(results.map((result) => [result.line, result.outcome]));
  const cost = new Map<number, Record<Kind, number>>();
  const charge = (lines: number[], kind: Kind) => {
    for (const line of lines) {
      const row = cost.get(line) ?? { lookups: 0, writes: 0, 'bulk jobs': 0, other: 0 };
      row[kind] += 1 / lines.length;
      cost.set(line, row);
    }
  };
  const linesOf = (keys: string[]) => [...new Set(keys.flatMap((key) => byValue.get(key) ?? []))];
  const inJobs: number[] = [];
  const jobReads: RecordedRequest[] = [];
  let unattributed = 0;
  for (const request of requests) {
    const endpoint = endpointOf(request);
    const body = request.body as { data?: { id?: string; attributes?: Record<string, unknown> } } | undefined;
    let lines: number[] = [];
    let kind: Kind = 'other';
    if (endpoint === 'GET /api/profiles') {
      kind = 'lookups';
      lines = linesOf(filterKeys(request.query.filter ?? ''));
    } else if (endpoint === 'POST /api/profile-bulk-import-jobs') {
      kind = 'bulk jobs';
      const job = body?.data?.attributes?.profiles as { data: { attributes: { external_id?: string } }[] };
      lines = linesOf(job.data.map((profile) => `external_id:${profile.attributes.external_id}`));
      inJobs.push(...lines);
    } else if (endpoint.includes('/api/profile-bulk-import-jobs/')) {
      jobReads.push(request);
      continue;
    } else {
      kind = request.method === 'GET' ? 'other' : 'writes';
      const externalId = body?.data?.attributes?.external_id;
      const id = request.path.split('/').at(-1);
      lines = linesOf([
        `id:${body?.data?.id ?? id}`,
        ...(typeof externalId === 'string' ? [`external_id:${externalId}`] : []),
      ]);
    }
    if (lines.length === 0) unattributed++;
    else charge(lines, kind);
  }
  for (const _ of jobReads) charge(inJobs, 'bulk jobs');

  const byOutcome = new Map<string, { rows: number } & Record<Kind, number>>();
  for (const [line, outcome] of outcomeOf) {
    const row = cost.get(line) ?? { lookups: 0, writes: 0, 'bulk jobs': 0, other: 0 };
    const sum = byOutcome.get(outcome) ?? { rows: 0, lookups: 0, writes: 0, 'bulk jobs': 0, other: 0 };
    sum.rows++;
    for (const kind of ['lookups', 'writes', 'bulk jobs', 'other'] as const) sum[kind] += row[kind];
    byOutcome.set(outcome, sum);
  }
  if (unattributed > 0) console.log(`(${unattributed} requests named no row of the file)`);
  return [...byOutcome].map(([outcome, sum]) => {
    const perRow = (value: number) => Number((value / sum.rows).toFixed(3));
    return {
      outcome,
      rows: sum.rows,
      'requests/row': perRow(sum.lookups + sum.writes + sum['bulk jobs'] + sum.other),
      lookups: perRow(sum.lookups),
      writes: perRow(sum.writes),
      'bulk jobs': perRow(sum['bulk jobs']),
      'other reads': perRow(sum.other),
    };
  });
}

/** The values of a lookup's `equals(field,"v")` or `any(field,["a","b"])` filter, as `field:value` keys. */
function filterKeys(filter: string): string[] {
  const field = /^(?:equals|any)\((\w+),/.exec(filter)?.[1];
  if (!field) return [];
  return filterValues(filter).map((value) => `${field}:${field === 'email' ? value.toLowerCase() : value}`);
}
