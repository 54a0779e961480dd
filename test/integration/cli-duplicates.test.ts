import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { duplicates } from '../../cli/commands/duplicates.js';
import { history } from '../../cli/commands/history.js';
import type { ReportLine } from '../../cli/duplicates-report.js';
import { cliSettings } from '../../cli/settings.js';
import { createKlaviyoClient } from '../../lib/klaviyo/client.js';
import type { KlaviyoSandbox } from '../../local/klaviyo-sandbox.js';
import { DEMO_TENANT } from '../../scripts/local-stack/demo-tenant.js';
import { captureIo } from '../support/cli.js';
import { usePeersInEnv } from '../support/local-peers.js';
import { useTempDir } from '../support/temp-dir.js';

/**
 * `identity-sync duplicates` in-process against the local peers: the Klaviyo sandbox (paging,
 * merges carried out later, Klaviyo's limits) holds the account, dynalite the audit trail that
 * `history` reads. The sandbox is this file's alone and emptied before each test, since a scan
 * reads every profile of the account.
 */
const peers = usePeersInEnv();
const tempDir = useTempDir('duplicates');
let klaviyo: KlaviyoSandbox;
let dir: string;
let serial = 0;

beforeAll(() => {
  klaviyo = peers.klaviyo as KlaviyoSandbox;
  dir = tempDir();
});
beforeEach(() => {
  serial++;
  klaviyo.reset();
});

const env = () => ({ ...peers.env, KLAVIYO_API_KEY: DEMO_TENANT.klaviyoPrivateKey });
/** Customer ids unique to one test: the audit trail in dynalite outlives the sandbox's resets. */
const customerId = (label: string) => `${label}-${serial}`;
const prefixOf = (name: string) => join(dir, `${serial}-${name}`);

async function run(command: typeof duplicates, args: string[]) {
  const { io, written } = captureIo(env());
  const code = await command(args, io);
  return { code, ...written };
}

/** The account's list reads: GET /api/profiles (lookups and pages alike), with their query. */
const listReads = () =>
  klaviyo.requests.filter((request) => request.method === 'GET' && request.path === '/api/profiles');

async function reportOf(prefix: string): Promise<ReportLine[]> {
  const text = await readFile(`${prefix}.ndjson`, 'utf8');
  return text
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line));
}

const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );

describe('identity-sync duplicates: reading the account', () => {
  it('reads every page, resumes an interrupted scan without reading its pages again, and reports the pairs', async () => {
    const customers = Array.from({ length: 110 }, (_, i) =>
      klaviyo.seedProfile({
        email: `customer${i}@gmail.com`,
        external_id: customerId(`C${i}`),
        first_name: `First${i}`,
        last_name: 'Last',
      }),
    );
    for (let i = 0; i < 115; i++) klaviyo.seedProfile({ email: `other${i}@example.com` });
    // On the third page: the scan must get there to find them.
    const typos = [0, 1, 2].map((i) =>
      klaviyo.seedProfile({ email: `customer${i}@gmial.com`, first_name: `First${i}`, last_name: 'Last' }),
    );
    const keystroke = klaviyo.seedProfile({ email: 'customr5@gmail.com' });
    const prefix = prefixOf('scan');

    const first = await run(duplicates, ['--report', prefix, '--max-pages', '2']);
    expect(first.code).toBe(1);
    expect(first.stdout).toMatch(/Read 200 profiles in 2 pages .*not all yet: --max-pages 2 reached/);
    expect(listReads()).toHaveLength(2);
    expect(listReads()[0]?.query).toEqual({
      'fields[profile]': 'email,phone_number,external_id,first_name,last_name',
      'page[size]': '100',
    });
    expect(await exists(`${prefix}.csv`)).toBe(false);

    klaviyo.clearRequests();
    const second = await run(duplicates, ['--report', prefix]);
    expect(second.code).toBe(0);
    // Only the third page: the first two come from the checkpoint.
    expect(listReads()).toHaveLength(1);
    expect(listReads()[0]?.query['page[cursor]']).toEqual(expect.any(String));
    expect(second.stdout).toContain('Read 229 profiles in 3 pages (1 read by this run)');
    expect(second.stdout).toContain('4 candidate pairs (3 misspelt_domain, 1 local_part_typo)');

    const report = await reportOf(prefix);
    expect(
      report.map((line) => [line.destination.id, line.source.id, line.rule, line.confidence, line.apply]),
    ).toEqual([
      ...typos.map((typo, i) => [customers[i]?.id, typo.id, 'misspelt_domain', 0.95, 'merge']),
      [customers[5]?.id, keystroke.id, 'local_part_typo', 0.5, 'below_min_confidence'],
    ]);
    expect(report[0]?.merge).toContain(`Klaviyo then deletes ${typos[0]?.id}`);
    const csv = (await readFile(`${prefix}.csv`, 'utf8')).trim().split('\n');
    expect(csv).toHaveLength(5);
    expect(csv[1]).toContain(`${customers[0]?.id},${customerId('C0')},customer0@gmail.com,First0 Last,`);
    // The report holds the merchant's emails; what the terminal shows does not.
    expect(second.stdout + second.stderr).not.toContain('customer0@gmial.com');
    // The surest pairs are on screen, masked, surest first.
    expect(second.stdout).toContain(
      `  0.95  misspelt_domain  merge  profile ${customers[0]?.id} customer ${customerId('C0')} c***@gmail.com <- profile ${typos[0]?.id} c***@gmial.com  (`,
    );
    expect(second.stdout).toContain(
      `  0.50  local_part_typo  below_min_confidence  profile ${customers[5]?.id} customer ${customerId('C5')} c***@gmail.com <- profile ${keystroke.id} c***@gmail.com  (`,
    );

    klaviyo.clearRequests();
    const third = await run(duplicates, ['--report', prefix]);
    expect(third.code).toBe(0);
    expect(third.stderr).toContain('reusing the finished read');
    expect(listReads()).toHaveLength(0);
    expect(await reportOf(prefix)).toEqual(report);
  });

  it('reads only the profiles of a customer export with --customers, by email', async () => {
    const ada = klaviyo.seedProfile({
      email: 'ada@gmail.com',
      external_id: customerId('ada'),
      first_name: 'Ada',
      last_name: 'Lovelace',
    });
    const typo = klaviyo.seedProfile({ email: 'ada@gmial.com', first_name: 'Ada', last_name: 'Lovelace' });
    klaviyo.seedProfile({ email: 'bob@example.com', external_id: customerId('bob') });
    // A typo in the local part: only a scan of the account finds it.
    klaviyo.seedProfile({ email: 'bobb@example.com' });
    const exportFile = join(dir, `${serial}-customers.csv`);
    await writeFile(
      exportFile,
      `Customer ID,First Name,Last Name,Email,Phone\n${customerId('ada')},Ada,Lovelace,Ada@gmail.com,\n${customerId('bob')},Bob,,bob@example.com,\n`,
    );
    const prefix = prefixOf('export');

    const { code, stdout } = await run(duplicates, ['--report', prefix, '--customers', exportFile]);

    expect(code).toBe(0);
    expect(stdout).toContain('1 candidate pair (1 misspelt_domain)');
    expect((await reportOf(prefix)).map((line) => [line.destination.id, line.source.id])).toEqual([
      [ada.id, typo.id],
    ]);
    expect(listReads().length).toBeGreaterThan(0);
    expect(listReads().every((read) => read.query.filter?.startsWith('any(email,'))).toBe(true);
  });
});

describe('identity-sync duplicates --apply', () => {
  it('merges the sure pairs, audits each, and refuses a source that became a customer after the scan', async () => {
    const names = (first_name: string, last_name: string) => ({ first_name, last_name });
    const grace = klaviyo.seedProfile({
      email: 'grace@gmail.com',
      external_id: customerId('grace'),
      ...names('Grace', 'Hopper'),
    });
    const graceTypo = klaviyo.seedProfile({ email: 'grace@gmial.com', ...names('Grace', 'Hopper') });
    const alan = klaviyo.seedProfile({
      email: 'alan@hotmail.com',
      external_id: customerId('alan'),
      ...names('Alan', 'Turing'),
    });
    const alanTypo = klaviyo.seedProfile({ email: 'alan@hotmial.com', ...names('Alan', 'Turing') });
    const linus = klaviyo.seedProfile({ email: 'linus@example.com', external_id: customerId('linus') });
    const relay = klaviyo.seedProfile({ email: 'x7k2@privaterelay.appleid.com' });
    klaviyo.seedProfile({ email: 'annabel@example.com', external_id: customerId('annabel') });
    const unsure = klaviyo.seedProfile({ email: 'anabel@example.com' });
    const relayFile = join(dir, `${serial}-relays.csv`);
    await writeFile(relayFile, `email,externalId\nx7k2@privaterelay.appleid.com,${customerId('linus')}\n`);
    const prefix = prefixOf('apply');

    const scan = await run(duplicates, ['--report', prefix, '--relay-file', relayFile]);
    expect(scan.code).toBe(0);
    expect(scan.stdout).toContain('3 to merge with --apply');
    // Between the scan and --apply, the typo'd address becomes another customer's.
    const settings = cliSettings(env());
    await createKlaviyoClient({
      baseUrl: klaviyo.url,
      apiKey: DEMO_TENANT.klaviyoPrivateKey,
      revision: settings.KLAVIYO_REVISION,
      timeoutMs: settings.KLAVIYO_TIMEOUT_MS,
    }).updateProfile(alanTypo.id, { external_id: customerId('alan2') });
    klaviyo.clearRequests();

    const applied = await run(duplicates, [
      '--report',
      prefix,
      '--relay-file',
      relayFile,
      '--apply',
      '--yes',
    ]);

    expect(applied.code).toBe(1);
    expect(klaviyo.getProfile(graceTypo.id)).toBeUndefined();
    expect(klaviyo.getProfile(relay.id)).toBeUndefined();
    expect(klaviyo.getProfile(grace.id)?.external_id).toBe(customerId('grace'));
    expect(klaviyo.getProfile(alanTypo.id)?.external_id).toBe(customerId('alan2'));
    expect(klaviyo.getProfile(unsure.id)).toBeDefined();
    const merges = klaviyo.requests.filter((request) => request.path === '/api/profile-merge');
    expect(merges.map((request) => (request.body as { data: { id: string } }).data.id).sort()).toEqual(
      [grace.id, linus.id].sort(),
    );
    const results = (await readFile(`${prefix}.merges.ndjson`, 'utf8'))
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(Object.fromEntries(results.map((line) => [line.sourceId, line.outcome]))).toEqual({
      [graceTypo.id]: 'merged',
      [relay.id]: 'merged',
      [alanTypo.id]: 'refused',
    });
    expect(applied.stdout).toMatch(/refused .*source_has_external_id/);
    expect(applied.stdout).toContain('Merges: ');
    expect(applied.stdout).not.toContain('grace@gmial.com');

    const graceHistory = await run(history, [customerId('grace')]);
    expect(graceHistory.stdout).toMatch(
      new RegExp(`merged +merge-duplicate +profiles ${grace.id}, ${graceTypo.id} +\\(misspelt_domain`),
    );
    const linusHistory = await run(history, [customerId('linus')]);
    expect(linusHistory.stdout).toMatch(
      new RegExp(`merged +merge-duplicate +profiles ${linus.id}, ${relay.id}`),
    );
    const alanHistory = await run(history, [customerId('alan')]);
    expect(alanHistory.stdout).toMatch(/skipped +merge-duplicate .*source_has_external_id/);
    expect(alanHistory.stdout).toContain(alan.id);
  });

  it('asks before merging: without --yes and with no terminal to answer, it stops before reading', async () => {
    const { code, stderr } = await run(duplicates, ['--report', prefixOf('ask'), '--apply']);
    expect(code).toBe(2);
    expect(stderr).toContain('pass --yes');
    expect(klaviyo.requests).toHaveLength(0);
  });
});
