import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { apply } from '../../cli/commands/apply.js';
import { bind } from '../../cli/commands/bind.js';
import { forget } from '../../cli/commands/forget.js';
import { history } from '../../cli/commands/history.js';
import { keyFingerprint } from '../../cli/klaviyo-key.js';
import type { RowResult } from '../../cli/results.js';
import { createDynamoQuotaLedger } from '../../lib/adapters/dynamo-request-quota.js';
import { createDynamoAuditLog, createDynamoSyncState } from '../../lib/adapters/dynamo-sync-state.js';
import { maskEmail, maskPhone } from '../../lib/observability/mask.js';
import { type KlaviyoSandbox, startKlaviyoSandbox } from '../../local/klaviyo-sandbox.js';
import { DEMO_TENANT } from '../../scripts/local-stack/demo-tenant.js';
import { putTenantSecrets, TENANT_SECRET_PREFIX } from '../../scripts/local-stack/peers.js';
import { captureIo, resultsOf } from '../support/cli.js';
import { usePeersInEnv } from '../support/local-peers.js';
import { useTempDir } from '../support/temp-dir.js';

/**
 * The CLI's commands in-process against the local peers: the Klaviyo sandbox (Klaviyo's own rate
 * limits), dynalite for state and audit, the Secrets Manager endpoint for --secret-id.
 */
const peers = usePeersInEnv();
const tempDir = useTempDir('cli');
let klaviyo: KlaviyoSandbox;
let dir: string;
let serial = 0;

/** Identifiers unique to one test: Klaviyo identifiers are unique across the shared sandbox. */
function namesOfThisTest() {
  const run = ++serial;
  return {
    email: (label: string) => `${label}.${run}@example.com`,
    id: (label: string) => `${label}-${run}`,
    phone: (n: number) => `+1415555${String(run).padStart(2, '0')}${String(n).padStart(2, '0')}`,
  };
}

/**
 * Environment of a run: the sandbox's key, state and audit in dynalite unless `inMemory`. `bare`:
 * a trial run with the key alone (no TENANT_SECRET_PREFIX, state in memory).
 */
function envOf({ inMemory = false, key = true, bare = false } = {}) {
  const { SYNC_STATE_TABLE, TENANT_SECRET_PREFIX: prefix, ...env } = peers.env;
  return {
    ...env,
    ...(inMemory || bare ? {} : { SYNC_STATE_TABLE }),
    ...(bare ? {} : { TENANT_SECRET_PREFIX: prefix }),
    ...(key ? { KLAVIYO_API_KEY: DEMO_TENANT.klaviyoPrivateKey } : {}),
  };
}

async function inputFile(name: string, lines: string[]) {
  const path = join(dir, name);
  await writeFile(path, `${lines.join('\n')}\n`);
  return path;
}

const countOf = (results: RowResult[], outcome: string) =>
  results.filter((result) => result.outcome === outcome).length;

const writes = (sandbox = klaviyo) => sandbox.requests.filter((request) => request.method !== 'GET');
/** Lookups: GET /api/profiles with a filter (reads of one profile by id are GET /api/profiles/{id}). */
const lookups = (sandbox = klaviyo) =>
  sandbox.requests.filter((request) => request.method === 'GET' && request.path === '/api/profiles');

/** The leases a tenant's quota ledger holds for `endpoint`. */
async function quotaLeases(tenant: string, endpoint: string) {
  const ledger = createDynamoQuotaLedger({
    client: peers.dynamodb,
    tableName: peers.env.SYNC_STATE_TABLE as string,
    account: tenant,
  });
  return (await ledger.read(endpoint)).leases;
}

beforeAll(() => {
  klaviyo = peers.klaviyo as KlaviyoSandbox;
  dir = tempDir();
});
beforeEach(() => klaviyo.clearRequests());

describe('identity-sync apply', () => {
  it('applies a mixed file: every row gets an outcome, bad rows are reported with their line', async () => {
    const names = namesOfThisTest();
    const ours = klaviyo.seedProfile({ external_id: names.id('ours'), email: names.email('ours.old') });
    const someoneElse = klaviyo.seedProfile({ external_id: names.id('other'), email: names.email('taken') });
    const unbound = klaviyo.seedProfile({ email: names.email('bind.before') });
    const file = await inputFile('mixed.csv', [
      'externalId,email,phone,previousEmail,occurredAt',
      `${names.id('ours')},${names.email('ours.new')},,,`,
      `,${names.email('nobody')},,,`,
      `${names.id('bad-phone')},,12,,`,
      `${names.id('conflict')},${names.email('taken')},,,`,
      `${names.id('new')},"${names.email('new')}",${names.phone(1)},,2026-06-01T00:00:00Z`,
      `${names.id('bind')},${names.email('bind.after')},,${names.email('bind.before')},`,
      `"${names.id('broken')}"x,,,,`,
    ]);
    const { io, written } = captureIo(envOf());

    expect(await apply([file], io)).toBe(1);

    expect(await resultsOf(file)).toEqual([
      { line: 2, externalId: names.id('ours'), outcome: 'applied', profileId: ours.id },
      { line: 3, outcome: 'invalid', reason: 'externalId is missing' },
      {
        line: 4,
        externalId: names.id('bad-phone'),
        outcome: 'invalid',
        reason: 'phone: is not a valid phone number (E.164, or national in US)',
      },
      {
        line: 5,
        externalId: names.id('conflict'),
        outcome: 'parked',
        reason: `identifier_held_by_other_customer: profile ${someoneElse.id} of customer ${names.id('other')} holds an identifier this change needs`,
      },
      { line: 6, externalId: names.id('new'), outcome: 'created', profileId: expect.any(String) },
      { line: 7, externalId: names.id('bind'), outcome: 'bound', profileId: unbound.id },
      { line: 8, outcome: 'invalid', reason: 'malformed CSV: text after the closing quote of a field' },
    ]);
    expect(klaviyo.getProfile(ours.id)?.email).toBe(names.email('ours.new'));
    expect(klaviyo.getProfile(unbound.id)).toMatchObject({
      email: names.email('bind.after'),
      external_id: names.id('bind'),
    });
    expect(klaviyo.findProfile({ external_id: names.id('new') })).toMatchObject({
      phone_number: names.phone(1),
    });
    expect(klaviyo.getProfile(someoneElse.id)?.external_id).toBe(names.id('other'));

    expect(written.stdout).toMatch(/^apply .*mixed\.csv: 7 rows in /);
    for (const [outcome, count] of Object.entries({
      applied: 1,
      bound: 1,
      created: 1,
      parked: 1,
      failed: 0,
      invalid: 3,
    })) {
      expect(written.stdout).toMatch(new RegExp(`\\n  ${outcome} +${count}\\n`));
    }
    expect(written.stdout).toContain(`Results: ${file}.results.ndjson`);
    expect(written.stderr).toContain('100%  7/7');
  });

  it('refuses what the ERP endpoint refuses before any request, lists the rows that need attention, masked, and sends failed rows again only with --retry-failed', async () => {
    const names = namesOfThisTest();
    const file = await inputFile('attention.csv', [
      'externalId,email,phone',
      `${names.id('bad-email')},not-an-email,`,
      `${names.id('refused')},${names.email('refused')},`,
    ]);
    // Klaviyo refuses the create of line 3 for good (a 400, not a passing fault).
    klaviyo.injectFaults({ status: 400, method: 'POST', times: 1 });
    const first = captureIo(envOf({ inMemory: true }));

    expect(await apply([file], first.io)).toBe(1);

    expect(await resultsOf(file)).toMatchObject([
      { line: 2, outcome: 'invalid', reason: 'email: must be an email address' },
      { line: 3, outcome: 'failed' },
    ]);
    expect(klaviyo.requests.some((request) => request.url.includes('not-an-email'))).toBe(false);
    const listed = first.written.stdout.slice(first.written.stdout.indexOf('Rows that need attention'));
    expect(listed).toMatch(
      new RegExp(
        `^Rows that need attention \\(2\\):\n {2}line 2 {2}${names.id('bad-email')} {2}invalid {2}email: must be an email address {2}\\[email \\*\\*\\*\\]\n {2}line 3 {2}${names.id('refused')} {2}failed {2}klaviyo_`,
      ),
    );
    expect(listed).toContain('[email r***@example.com]');
    expect(listed).not.toContain(names.email('refused'));

    klaviyo.clearRequests();
    const rerun = captureIo(envOf({ inMemory: true }));
    expect(await apply([file], rerun.io)).toBe(1);
    expect(writes()).toEqual([]);
    expect(rerun.written.stdout).toContain(
      '1 row that failed in an earlier run was not sent again: --retry-failed sends them',
    );
    expect(rerun.written.stdout).toContain(`line 3  ${names.id('refused')}  failed`);

    const retried = captureIo(envOf({ inMemory: true }));
    expect(await apply([file, '--retry-failed'], retried.io)).toBe(1);
    expect((await resultsOf(file)).map((result) => result.outcome)).toEqual(['invalid', 'created']);
  });

  it('--dry-run looks up and decides, but writes nothing to Klaviyo', async () => {
    const names = namesOfThisTest();
    const ours = klaviyo.seedProfile({ external_id: names.id('dry'), email: names.email('dry.old') });
    const file = await inputFile('dry-run.ndjson', [
      JSON.stringify({ externalId: names.id('dry'), email: names.email('dry.new') }),
      JSON.stringify({ externalId: names.id('dry-new'), email: names.email('dry.created') }),
    ]);
    const { io, written } = captureIo(envOf({ inMemory: true }));

    expect(await apply([file, '--dry-run'], io)).toBe(0);

    expect(await resultsOf(file)).toEqual([
      {
        line: 1,
        externalId: names.id('dry'),
        outcome: 'would-patch',
        reason: `would patch profile ${ours.id}: email`,
        profileId: ours.id,
      },
      {
        line: 2,
        externalId: names.id('dry-new'),
        outcome: 'would-create',
        reason: 'would create a profile with external_id, email',
      },
    ]);
    expect(klaviyo.requests.length).toBeGreaterThan(0);
    expect(writes()).toEqual([]);
    expect(klaviyo.getProfile(ours.id)?.email).toBe(names.email('dry.old'));
    // By what would happen, not one count of rows "planned".
    expect(written.stdout).toMatch(/^apply \(dry run\) .*\n {2}would-create +1\n {2}would-patch +1\n/);
    expect(written.stdout).not.toContain('planned');
  });

  it('stops when Klaviyo refuses the key; the rows not attempted are failed, and say why', async () => {
    const names = namesOfThisTest();
    const file = await inputFile('refused.csv', [
      'externalId,email',
      ...Array.from({ length: 20 }, (_, i) => `${names.id(`r${i}`)},${names.email(`r${i}`)}`),
    ]);
    const { io, written } = captureIo({ ...envOf({ bare: true }), KLAVIYO_API_KEY: 'pk_revoked' });

    expect(await apply([file], io)).toBe(1);

    // The chunk's first lookup met the refusal: no row was attempted.
    const results = await resultsOf(file);
    expect(results).toHaveLength(20);
    expect(results.every((result) => result.outcome === 'failed')).toBe(true);
    expect(results.every((result) => result.reason?.startsWith('not attempted'))).toBe(true);
    expect(klaviyo.requests).toHaveLength(1);
    expect(written.stderr).toContain('Klaviyo refused the API key, so the run stopped');
  });

  it('looks up 300 customers it has no record of together, and with their records in DynamoDB sends nothing for rows that change nothing', async () => {
    const names = namesOfThisTest();
    // A tenant of its own, so the quota's counters hold this test's requests only.
    const tenant = `quota-${names.id('cli')}`;
    putTenantSecrets(peers.secrets, tenant, { klaviyoPrivateKey: DEMO_TENANT.klaviyoPrivateKey });
    const lines = ['externalId,email,phone'];
    for (let i = 0; i < 300; i++) {
      const externalId = names.id(`many-${i}`);
      const email = names.email(`many.${i}`);
      // One in five is new (created), one in five changes email (PATCH), three in five change nothing.
      if (i % 5 === 0) lines.push(`${externalId},${email},+1415${String(3_000_000 + serial * 1000 + i)}`);
      else {
        klaviyo.seedProfile({
          external_id: externalId,
          email: i % 5 === 1 ? names.email(`was.${i}`) : email,
        });
        lines.push(`${externalId},${email},`);
      }
    }
    const file = await inputFile('many.csv', lines);
    const run = async (...more: string[]) => {
      const { io, written } = captureIo(envOf());
      expect(await apply([file, '--tenant', tenant, '--concurrency', '8', ...more], io)).toBe(0);
      expect(written.stderr).toContain(`requests paced by tenant ${tenant}'s quota shared with the workers`);
      return resultsOf(file);
    };

    const first = await run();
    expect(first.map((result) => result.line)).toEqual(Array.from({ length: 300 }, (_, i) => i + 2));
    expect([countOf(first, 'created'), countOf(first, 'applied'), countOf(first, 'unchanged')]).toEqual([
      60, 60, 180,
    ]);
    const gets = lookups().length;
    expect(gets).toBeLessThanOrEqual(9); // 3 per 100 rows
    expect(klaviyo.requests.filter((request) => request.method === 'GET')).toHaveLength(gets);
    expect(
      writes()
        .map((request) => `${request.method} ${request.path.replace(/[^/]+$/, '…')}`)
        .sort(),
    ).toEqual([...Array<string>(60).fill('PATCH /api/profiles/…'), ...Array<string>(60).fill('POST /api/…')]);
    expect(writes().filter((request) => request.path === '/api/profile-import')).toHaveLength(60);

    // Every request drew on the tenant's quota in the table, in blocks (leases), not one write each.
    for (const [endpoint, count] of [
      ['GET /api/profiles', gets],
      ['PATCH /api/profiles/{id}', 60],
      ['POST /api/profile-import', 60],
    ] as const) {
      const leases = await quotaLeases(tenant, endpoint);
      expect(leases.reduce((total, lease) => total + lease.requests, 0)).toBeGreaterThanOrEqual(count);
      if (count > 10) expect(leases.length).toBeLessThan(count);
    }

    klaviyo.clearRequests();
    // --restart: not resuming the first run's results, every row is decided again.
    const second = await run('--restart');
    expect(countOf(second, 'unchanged')).toBe(300);
    expect(klaviyo.requests).toEqual([]);
  }, 30_000);
});

describe('the tenant and its key', () => {
  /** A refusal: exit 2, one line on stderr, nothing sent to Klaviyo, no results file. */
  async function expectRefused(env: NodeJS.ProcessEnv, args: string[], message: string) {
    const file = await inputFile(`refused-${++serial}.csv`, [
      'externalId,email',
      `r-${serial},r@example.com`,
    ]);
    const { io, written } = captureIo(env);
    expect(await apply([file, ...args], io)).toBe(2);
    expect(written.stderr).toBe(`identity-sync: ${message}\n`);
    expect(klaviyo.requests).toEqual([]);
    expect(existsSync(`${file}.results.ndjson`)).toBe(false);
  }

  it('refuses a tenant without a secret under TENANT_SECRET_PREFIX before anything is read or written', async () => {
    await expectRefused(
      envOf(),
      ['--tenant', 'dmeo'],
      `unknown tenant 'dmeo': there is no secret ${TENANT_SECRET_PREFIX}dmeo/klaviyo (TENANT_SECRET_PREFIX + tenant + /klaviyo); nothing was read or written`,
    );
  });

  it("refuses a key given besides that is not the tenant's own", async () => {
    const other = 'pk_another_account_key';
    await expectRefused(
      { ...envOf(), KLAVIYO_API_KEY: other },
      [],
      `the Klaviyo key given (KLAVIYO_API_KEY, key ${keyFingerprint(other)}) is not tenant demo's (secret ${TENANT_SECRET_PREFIX}demo/klaviyo holds key ${keyFingerprint(DEMO_TENANT.klaviyoPrivateKey)}): leave it out to use the tenant's key, or name the right --tenant; nothing was read or written`,
    );
    // --secret-id naming another tenant's secret is refused alike.
    putTenantSecrets(peers.secrets, 'elsewhere', { klaviyoPrivateKey: other });
    const { io, written } = captureIo(envOf({ key: false }));
    const file = await inputFile('elsewhere.csv', ['externalId,email', 'e-1,e@example.com']);
    expect(await apply([file, '--secret-id', `${TENANT_SECRET_PREFIX}elsewhere/klaviyo`], io)).toBe(2);
    expect(written.stderr).toContain("is not tenant demo's");
    expect(klaviyo.requests).toEqual([]);
  });

  it("takes the tenant's key from its secret when none is given, and says which key it is", async () => {
    const names = namesOfThisTest();
    const ours = klaviyo.seedProfile({ external_id: names.id('keyed'), email: names.email('keyed.old') });
    const file = await inputFile('keyed.csv', [
      'externalId,email',
      `${names.id('keyed')},${names.email('keyed.new')}`,
    ]);
    const { io, written } = captureIo(envOf({ key: false }));
    expect(await apply([file], io)).toBe(0);
    expect(klaviyo.getProfile(ours.id)?.email).toBe(names.email('keyed.new'));
    expect(written.stderr).toContain(
      `for tenant demo at ${klaviyo.url} (key ${keyFingerprint(DEMO_TENANT.klaviyoPrivateKey)} from secret ${TENANT_SECRET_PREFIX}demo/klaviyo)`,
    );
  });

  it('does again, against another Klaviyo, the rows a trial run against the sandbox did, and says so', async () => {
    const names = namesOfThisTest();
    const lines = ['externalId,email'];
    for (let i = 0; i < 7; i++) lines.push(`${names.id(`trial-${i}`)},${names.email(`trial.${i}`)}`);
    const file = await inputFile('trial.csv', lines);

    // The trial run against the sandbox, with its key alone.
    expect(await apply([file], captureIo(envOf({ bare: true })).io)).toBe(0);
    expect(countOf(await resultsOf(file), 'created')).toBe(7);

    // The same file against another Klaviyo: every row is written there.
    const another = await startKlaviyoSandbox({ apiKeys: [DEMO_TENANT.klaviyoPrivateKey] });
    try {
      const { io, written } = captureIo({ ...envOf({ bare: true }), KLAVIYO_BASE_URL: another.url });
      expect(await apply([file], io)).toBe(0);
      expect(written.stderr).toContain(
        `identity-sync: 7 rows in ${file}.results.ndjson were done against another Klaviyo account, base URL or tenant` +
          ' (or by a version that did not record which): they are not skipped; this run starts afresh',
      );
      expect(written.stderr).not.toContain('done by an earlier run are skipped');
      expect(countOf(await resultsOf(file), 'created')).toBe(7);
      for (let i = 0; i < 7; i++)
        expect(another.findProfile({ external_id: names.id(`trial-${i}`) })).toBeDefined();

      // Run again there: now those rows are done against this Klaviyo.
      another.clearRequests();
      const again = captureIo({ ...envOf({ bare: true }), KLAVIYO_BASE_URL: another.url });
      expect(await apply([file], again.io)).toBe(0);
      expect(again.written.stderr).toContain('resuming: 7 rows done by an earlier run are skipped');
      expect(another.requests).toEqual([]);
    } finally {
      await another.stop();
    }
  });
});

describe('identity-sync bind', () => {
  it("binds profiles found by email or phone from Shopify's customer export, and never creates", async () => {
    const names = namesOfThisTest();
    const byEmail = klaviyo.seedProfile({ email: names.email('by-email') });
    const byPhone = klaviyo.seedProfile({ phone_number: names.phone(1) });
    const already = klaviyo.seedProfile({ email: names.email('already'), external_id: names.id('already') });
    const others = klaviyo.seedProfile({ email: names.email('others'), external_id: names.id('someone') });
    const holder = klaviyo.seedProfile({ email: names.email('holder'), external_id: names.id('dup') });
    const duplicate = klaviyo.seedProfile({ email: names.email('duplicate') });
    const header =
      'Customer ID,First Name,Last Name,Email,Accepts Email Marketing,Default Address Company,Default Address Address1,' +
      'Default Address Address2,Default Address City,Default Address Province Code,Default Address Country Code,' +
      'Default Address Zip,Default Address Phone,Phone,Accepts SMS Marketing,Total Spent,Total Orders,Note,Tax Exempt,Tags';
    const customer = (id: string, email: string, phone = '') =>
      `'${id},Ada,Lovelace,${email},yes,"Analytical Engines, Ltd.",12 St James's Sq,,London,,GB,SW1Y 4JH,,${phone ? `'${phone}` : ''},no,120.50,3,"Likes ""notes""\non two lines",no,"vip, wholesale"`;
    const file = await inputFile('customers_export.csv', [
      header,
      customer(names.id('by-email'), names.email('by-email')),
      customer(names.id('by-phone'), '', names.phone(1)),
      customer(names.id('already'), names.email('already')),
      customer(names.id('mine'), names.email('others')),
      customer(names.id('nobody'), names.email('nobody'), names.phone(2)),
      customer(names.id('dup'), names.email('duplicate')),
      customer('', names.email('no-id')),
    ]);
    const { io, written } = captureIo(envOf());

    expect(await bind([file], io)).toBe(1);

    expect(await resultsOf(file)).toEqual([
      {
        line: 2,
        externalId: names.id('by-email'),
        outcome: 'bound',
        reason: 'found by email',
        profileId: byEmail.id,
      },
      {
        line: 4,
        externalId: names.id('by-phone'),
        outcome: 'bound',
        reason: 'found by phone',
        profileId: byPhone.id,
      },
      { line: 6, externalId: names.id('already'), outcome: 'unchanged', profileId: already.id },
      {
        line: 8,
        externalId: names.id('mine'),
        outcome: 'conflict',
        reason: `profile ${others.id} (found by email) belongs to customer ${names.id('someone')}, not ${names.id('mine')}`,
        profileId: others.id,
      },
      {
        line: 10,
        externalId: names.id('nobody'),
        outcome: 'not-found',
        reason: 'no profile has this email or phone',
      },
      {
        line: 12,
        externalId: names.id('dup'),
        outcome: 'conflict',
        reason: `external_id ${names.id('dup')} is already on profile ${holder.id}`,
        profileId: duplicate.id,
      },
      { line: 14, outcome: 'invalid', reason: 'Customer ID is missing' },
    ]);
    expect(klaviyo.getProfile(byEmail.id)?.external_id).toBe(names.id('by-email'));
    expect(klaviyo.getProfile(byPhone.id)?.external_id).toBe(names.id('by-phone'));
    expect(klaviyo.getProfile(others.id)?.external_id).toBe(names.id('someone'));
    expect(writes().every((request) => request.method === 'PATCH')).toBe(true);
    expect(written.stdout).toMatch(/\n {2}bound +2\n {2}unchanged +1\n {2}conflict +2\n {2}not-found +1\n/);
  });

  it('finds 300 customers with at most 2 lookups per 100 rows: emails together, then the phones still unfound', async () => {
    const names = namesOfThisTest();
    const lines = ['Customer ID,Email,Phone'];
    const profiles: string[] = [];
    for (let i = 0; i < 300; i++) {
      const email = names.email(`backfill.${i}`);
      const phone = `+1415${String(4_000_000 + serial * 1000 + i)}`;
      // A third found by email (some written in capitals in the export), a third by phone, a third nowhere.
      if (i % 3 === 0) profiles.push(klaviyo.seedProfile({ email }).id);
      if (i % 3 === 1) profiles.push(klaviyo.seedProfile({ phone_number: phone }).id);
      lines.push(`${names.id(`backfill-${i}`)},${i % 30 === 0 ? email.toUpperCase() : email},${phone}`);
    }
    const file = await inputFile('backfill.csv', lines);
    const { io, written } = captureIo(envOf({ inMemory: true }));

    // Below Klaviyo's 75/s: the sandbox's current second may hold the previous test's requests.
    expect(await bind([file, '--rate-per-second', '60'], io)).toBe(0);

    const results = await resultsOf(file);
    expect(results.map((result) => result.outcome)).toEqual(
      Array.from({ length: 300 }, (_, i) => (i % 3 === 2 ? 'not-found' : 'bound')),
    );
    expect(results.filter((result) => result.reason === 'found by email')).toHaveLength(100);
    expect(results.filter((result) => result.reason === 'found by phone')).toHaveLength(100);
    expect(profiles.map((id) => klaviyo.getProfile(id)?.external_id)).toEqual(
      results.filter((result) => result.outcome === 'bound').map((result) => result.externalId),
    );
    expect(lookups().length).toBeLessThanOrEqual(6);
    // One write a bound row (a 429 from a second the previous test filled, retried, aside).
    expect(writes().filter((request) => request.status !== 429)).toHaveLength(200);
    expect(written.stderr).toContain('requests paced in this process, at most 60/s per endpoint');
  });
});

describe('identity-sync history', () => {
  it("prints a customer's decisions newest first, from DynamoDB, after apply and bind", async () => {
    const names = namesOfThisTest();
    const externalId = names.id('audited');
    const profile = klaviyo.seedProfile({ email: names.email('audit.first') });
    const customers = await inputFile('audit-customers.csv', [
      'id,email',
      `${externalId},${names.email('audit.first')}`,
    ]);
    const changes = await inputFile('audit-changes.ndjson', [
      JSON.stringify({ externalId, email: names.email('audit.second'), occurredAt: '2026-06-01T00:00:01Z' }),
      JSON.stringify({ externalId, phone: names.phone(1), occurredAt: '2026-06-01T00:00:02Z' }),
      JSON.stringify({ externalId, email: names.email('audit.stale'), occurredAt: '2026-05-01T00:00:00Z' }),
    ]);
    // The key from the tenant's secret, as the worker reads it.
    const secretId = ['--secret-id', `${TENANT_SECRET_PREFIX}${DEMO_TENANT.tenant}/klaviyo`];
    expect(await bind([customers, ...secretId], captureIo(envOf({ key: false })).io)).toBe(0);
    expect(await apply([changes, ...secretId], captureIo(envOf({ key: false })).io)).toBe(0);

    const { io, written } = captureIo(envOf({ key: false }));
    expect(await history([externalId], io)).toBe(0);

    const lines = written.stdout.trim().split('\n');
    expect(lines[0]).toBe(`Decisions for customer ${externalId} of tenant demo, newest first:`);
    expect(lines.slice(1).map((line) => line.split(/\s+/)[1])).toEqual([
      'stale',
      'applied',
      'applied',
      'bound',
    ]);
    // Masked: the audit trail keeps no email or phone as it is.
    expect(lines[2]).toContain(`phone_number (none) → ${maskPhone(names.phone(1))}`);
    expect(lines[3]).toContain(
      `email ${maskEmail(names.email('audit.first'))} → ${maskEmail(names.email('audit.second'))}`,
    );
    expect(written.stdout).not.toContain(names.email('audit.second'));
    expect(lines[4]).toContain(`profile ${profile.id}  external_id (none) → ${externalId}  (found by email)`);
    expect(lines[4]).toContain('[cli:audit-customers.csv:2]');

    const json = captureIo(envOf({ key: false }));
    expect(await history([externalId, '--json', '--limit', '2'], json.io)).toBe(0);
    expect(JSON.parse(json.written.stdout)).toMatchObject([
      { outcome: 'stale', sourceEventId: 'cli:audit-changes.ndjson:3' },
      { outcome: 'applied', sourceEventId: 'cli:audit-changes.ndjson:2' },
    ]);
    expect(json.written.stdout).not.toContain(names.phone(1));

    // Was this the email at each step? Yes or no, with the tenant's key: no value shown.
    const asked = captureIo(envOf({ key: false }));
    const askedEmail = names.email('audit.second').toUpperCase();
    expect(await history([externalId, '--email', askedEmail, ...secretId], asked.io)).toBe(0);
    const confirmations = asked.written.stdout.split('\n').filter((line) => line.startsWith('    '));
    expect(confirmations).toEqual([
      '    email: not recorded in this step',
      '    email: held before: yes',
      '    email: held before: no, set after: yes',
      '    email: held before: no',
    ]);
    expect(asked.written.stdout.toLowerCase()).not.toContain(askedEmail.toLowerCase());
  });

  it('names the profile a created customer got', async () => {
    const names = namesOfThisTest();
    const externalId = names.id('created');
    const changes = await inputFile('audit-created.ndjson', [
      JSON.stringify({ externalId, email: names.email('created') }),
    ]);
    expect(await apply([changes], captureIo(envOf()).io)).toBe(0);
    const created = klaviyo.findProfile({ external_id: externalId });

    const { io, written } = captureIo(envOf({ key: false }));
    expect(await history([externalId], io)).toBe(0);
    expect(written.stdout).toMatch(new RegExp(`created +create +profile ${created?.id} `));
  });
});

describe('a customer erased on request', () => {
  it('is neither applied nor bound by a later run, nor looked up, and nothing of theirs is recorded again', async () => {
    const names = namesOfThisTest();
    const erased = names.id('erased');
    const applied = await inputFile('before-erasure.ndjson', [
      JSON.stringify({ externalId: erased, email: names.email('erased.before') }),
    ]);
    expect(await apply([applied], captureIo(envOf()).io)).toBe(0);
    const forgot = captureIo(envOf());
    expect(await forget([erased, '--yes', '--settle-seconds', '0'], forgot.io)).toBe(0);
    expect(forgot.written.stdout).toMatch(/1 state item\(s\), 1 audit item\(s\)/);
    klaviyo.clearRequests();

    // An old export re-applied: the erased customer's row is skipped, the other row is applied.
    const changes = await inputFile('after-erasure.ndjson', [
      JSON.stringify({ externalId: erased, email: names.email('erased.after') }),
      JSON.stringify({ externalId: names.id('alive'), email: names.email('alive') }),
    ]);
    const skipped = {
      line: 1,
      externalId: erased,
      outcome: 'skipped',
      reason: 'the customer was erased on request: nothing of theirs is applied or recorded',
    };
    expect(await apply([changes, '--dry-run'], captureIo(envOf()).io)).toBe(0);
    expect((await resultsOf(changes))[0]).toEqual({ ...skipped, outcome: 'would-skip' });
    expect(await apply([changes, '--restart'], captureIo(envOf()).io)).toBe(0);
    expect((await resultsOf(changes)).map((result) => result.outcome)).toEqual(['skipped', 'created']);
    expect((await resultsOf(changes))[0]).toEqual(skipped);

    // A Shopify export bound afterwards: the profile that has the erased customer's email stays unbound.
    const unbound = klaviyo.seedProfile({ email: names.email('erased.bind') });
    const unboundAlive = klaviyo.seedProfile({ email: names.email('alive.bind') });
    const customers = await inputFile('customers-after-erasure.csv', [
      'Customer ID,Email,Phone',
      `${erased},${names.email('erased.bind')},`,
      `${names.id('alive.bind')},${names.email('alive.bind')},`,
    ]);
    expect(await bind([customers], captureIo(envOf()).io)).toBe(0);
    expect((await resultsOf(customers)).map((result) => [result.externalId, result.outcome])).toEqual([
      [erased, 'skipped'],
      [names.id('alive.bind'), 'bound'],
    ]);
    expect(klaviyo.getProfile(unbound.id)?.external_id ?? null).toBeNull();
    expect(klaviyo.getProfile(unboundAlive.id)?.external_id).toBe(names.id('alive.bind'));

    const asked = JSON.stringify(klaviyo.requests);
    for (const value of [erased, names.email('erased.after'), names.email('erased.bind')]) {
      expect(asked).not.toContain(encodeURIComponent(value).replaceAll('%40', '@'));
      expect(asked).not.toContain(value);
    }
    expect(klaviyo.findProfile({ email: names.email('erased.after') })).toBeUndefined();
    const table = peers.env.SYNC_STATE_TABLE as string;
    expect(await createDynamoSyncState(peers.dynamodb, table).getState(DEMO_TENANT.tenant, erased)).toEqual(
      {},
    );
    expect(
      await createDynamoAuditLog(peers.dynamodb, table, 30).history(DEMO_TENANT.tenant, erased, 10),
    ).toEqual([]);
  });
});

describe('a 1,000-row file', () => {
  /**
   * At Klaviyo's limits (750 requests a minute per endpoint) 1,000 rows take minutes, so this run
   * raises the sandbox's limits and paces to match with --rate-per-second. The run at the real
   * limits is bench/apply-throughput.ts.
   */
  const RATE = 500;
  let fast: KlaviyoSandbox;
  beforeAll(async () => {
    fast = await startKlaviyoSandbox({
      rateLimits: { burstPerSecond: RATE, steadyPerMinute: RATE * 60 },
      apiKeys: [DEMO_TENANT.klaviyoPrivateKey],
    });
  });
  afterAll(() => fast?.stop());

  it('is applied with every row accounted for in the summary and the results file, showing progress', async () => {
    const lines = ['externalId,email'];
    for (let i = 0; i < 1000; i++) {
      // Every other customer already has a profile and changes email; the others are new.
      if (i % 2 === 0) fast.seedProfile({ external_id: `bulk-${i}`, email: `bulk.${i}.old@example.com` });
      lines.push(`bulk-${i},bulk.${i}@example.com`);
    }
    const file = await inputFile('bulk.csv', lines);
    const { io, written } = captureIo({ ...envOf({ inMemory: true }), KLAVIYO_BASE_URL: fast.url });

    // One by one: bulk import jobs have tests of their own (cli-bulk.test.ts).
    expect(await apply([file, '--rate-per-second', String(RATE), '--no-bulk'], io)).toBe(0);

    const results = await resultsOf(file);
    expect(results.map((result) => result.line)).toEqual(Array.from({ length: 1000 }, (_, i) => i + 2));
    expect(results.filter((result) => result.outcome === 'applied')).toHaveLength(500);
    expect(results.filter((result) => result.outcome === 'created')).toHaveLength(500);
    expect(written.stdout).toMatch(/: 1000 rows in /);
    expect(written.stdout).toMatch(/\n {2}applied +500\n/);
    expect(written.stdout).toMatch(/\n {2}created +500\n/);

    const progress = written.stderr.split('\n').filter((line) => /^apply +\d+%/.test(line));
    // About ten lines in a log (every 10%, or every 5 seconds), not one per phase besides.
    expect(progress.length).toBeGreaterThanOrEqual(10);
    expect(progress.length).toBeLessThanOrEqual(15);
    expect(written.stderr.split('\n').filter((line) => line.startsWith('  '))).toEqual([]);
    expect(progress[1]).toMatch(/^apply +\d+% +\d+\/1000 /);
    expect(progress.at(-1)).toMatch(/^apply +100% +1000\/1000 /);
    expect(fast.listProfiles()).toHaveLength(1000);
    // Two chunks of 500: external_id for all, then email for the 250 new ones, 100 values a query.
    expect(lookups(fast).length).toBeLessThanOrEqual(16);
  }, 30_000);
});
