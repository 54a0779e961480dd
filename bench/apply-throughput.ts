import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { apply } from '../cli/commands/apply.js';
import { type RecordedRequest, SANDBOX_API_KEY, startKlaviyoSandbox } from '../local/klaviyo-sandbox.js';
import { benchIo, endpointTable } from './requests-by-endpoint.js';

/**
 * `npm run bench:apply-throughput [-- --rows N --concurrency N --no-bulk]`: `identity-sync apply` on N
 * generated rows (default 1,000) against a Klaviyo sandbox on loopback that enforces Klaviyo's
 * limits (75/s and 750/min per endpoint). Prints rows/s, requests and 429s per endpoint, and the
 * most requests the sandbox counted in any of its fixed windows, to compare with the limits.
 *
 * The rows mix what a backfill meets: 40% customers whose profile has their external_id and
 * whose email changed (PATCH), 20% profiles known by email only, as Klaviyo's own Shopify
 * integration leaves them (PATCH that binds), 40% new customers with email and phone
 * (profile-import; from 1,000 rows, through a bulk import job unless --no-bulk). The lookups of a
 * chunk of rows are made together with any() queries.
 */
const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '1000' },
    concurrency: { type: 'string', default: '4' },
    'no-bulk': { type: 'boolean', default: false },
  },
});
const rows = Number(values.rows);

const sandbox = await startKlaviyoSandbox();
try {
  const file = await generateRows(rows);
  process.stderr.write(`Sandbox at ${sandbox.url} with Klaviyo's limits; ${rows} rows in ${file}\n`);
  const started = Date.now();
  const exitCode = await apply(
    [file, '--concurrency', values.concurrency, ...(values['no-bulk'] ? ['--no-bulk'] : [])],
    benchIo({ KLAVIYO_API_KEY: SANDBOX_API_KEY, KLAVIYO_BASE_URL: sandbox.url }),
  );
  const elapsedMs = Date.now() - started;
  report(sandbox.requests, elapsedMs, exitCode);
} finally {
  await sandbox.stop();
}

async function generateRows(count: number): Promise<string> {
  const lines = ['externalId,email,phone'];
  for (let i = 0; i < count; i++) {
    const kind = i % 5;
    const phone = `+1415${String(2_000_000 + i).padStart(7, '0')}`;
    if (kind < 2) {
      sandbox.seedProfile({ external_id: `bench-${i}`, email: `bench.${i}.old@example.com` });
      lines.push(`bench-${i},bench.${i}@example.com,`);
    } else if (kind === 2) {
      sandbox.seedProfile({ email: `bench.${i}@example.com` });
      lines.push(`bench-${i},bench.${i}@example.com,`);
    } else {
      lines.push(`bench-${i},bench.${i}@example.com,${phone}`);
    }
  }
  const dir = await mkdtemp(join(tmpdir(), 'apply-throughput-'));
  const file = join(dir, `bench-${count}.csv`);
  await writeFile(file, `${lines.join('\n')}\n`);
  return file;
}

function report(requests: readonly RecordedRequest[], elapsedMs: number, exitCode: number) {
  const seconds = elapsedMs / 1000;
  console.log(
    `\nrows: ${rows}, elapsed: ${seconds.toFixed(1)} s, ${(rows / seconds).toFixed(2)} rows/s, exit code ${exitCode}`,
  );
  console.table(endpointTable(requests));
  console.log(`total requests: ${requests.length}, 429s: ${requests.filter((r) => r.status === 429).length}`);
  if (requests.length >= 10_000)
    console.log('(the sandbox keeps the last 10,000 requests: counts are partial)');
}
