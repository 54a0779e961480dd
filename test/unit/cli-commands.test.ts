import { existsSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { apply } from '../../cli/commands/apply.js';
import { bind } from '../../cli/commands/bind.js';
import { history } from '../../cli/commands/history.js';
import { identitySync } from '../../cli/identity-sync.js';
import { cliSettings, configuredTenants } from '../../cli/settings.js';
import { captureIo } from '../support/cli.js';
import { useTempDir } from '../support/temp-dir.js';

/** Removed after this file's tests, with every folder made in it. */
const tempDir = useTempDir('cli-commands');

/** Usage and exit codes; nothing here reaches Klaviyo or AWS (see test/integration/cli.test.ts). */
let dir: string;
let changes: string;
const withKey = { KLAVIYO_API_KEY: 'pk_unit_test', KLAVIYO_BASE_URL: 'http://127.0.0.1:9' };

beforeAll(async () => {
  dir = await mkdtemp(join(tempDir(), 'cli-commands-'));
  changes = join(dir, 'changes.csv');
  await writeFile(changes, 'externalId,email\n1,a@example.com\n');
});

describe('identity-sync', () => {
  it('lists the commands on --help', async () => {
    const { io, written } = captureIo();
    expect(await identitySync(['--help'], io)).toBe(0);
    for (const command of ['apply', 'bind', 'history', 'send'])
      expect(written.stdout).toContain(`  ${command} `);
  });

  it('exits 2 with the usage without a command or with an unknown one', async () => {
    const none = captureIo();
    expect(await identitySync([], none.io)).toBe(2);
    expect(none.written.stderr).toContain('Usage: identity-sync <command>');
    const unknown = captureIo();
    expect(await identitySync(['frobnicate'], unknown.io)).toBe(2);
    expect(unknown.written.stderr).toMatch(
      /^identity-sync: unknown command 'frobnicate' \(the commands: apply, bind, [^\n]+\)\nsee identity-sync --help\n$/,
    );
  });

  it("passes the rest of the arguments to the command: a command's --help", async () => {
    const { io, written } = captureIo();
    expect(await identitySync(['apply', '--help'], io)).toBe(0);
    expect(written.stdout).toContain('Usage: identity-sync apply <file>');
  });
});

describe('usage errors exit 2, before anything is sent', () => {
  it.each([
    [[], {}, 'the input file is missing'],
    [['CHANGES', '--bogus'], withKey, "Unknown option '--bogus'"],
    [['CHANGES', '--concurrency', '0'], withKey, '--concurrency must be a positive integer'],
    [['CHANGES', '--rate-per-second', 'fast'], withKey, '--rate-per-second must be a positive number'],
    [['CHANGES', '--region', 'USA'], withKey, '--region must be an ISO 3166 alpha-2 region'],
    [['CHANGES'], {}, 'set KLAVIYO_API_KEY or pass --secret-id'],
    [['CHANGES'], { KLAVIYO_API_KEY: 'public-key' }, 'KLAVIYO_API_KEY: must be a Klaviyo private key'],
    [['CHANGES'], { ...withKey, KLAVIYO_BASE_URL: 'not a url' }, 'Invalid configuration: KLAVIYO_BASE_URL'],
    [['CHANGES'], { ...withKey, KLAVIYO_QUOTA_SHARE: '1.5' }, 'Invalid configuration: KLAVIYO_QUOTA_SHARE'],
    [['CHANGES', '--tenant', ''], { ...withKey, DEFAULT_TENANT: '' }, '--tenant is required'],
    [['CHANGES', '--results', '/nonexistent/dir/out.ndjson'], withKey, 'cannot write the results to'],
    [['missing.csv'], withKey, 'cannot read missing.csv'],
    [['changes.txt'], withKey, 'cannot tell the format of changes.txt'],
  ])('apply %j', async (args, env, message) => {
    const { io, written } = captureIo(env);
    expect(
      await apply(
        args.map((arg) => (arg === 'CHANGES' ? changes : arg)),
        io,
      ),
    ).toBe(2);
    expect(written.stderr).toContain(message);
    // One line (then, for a usage error, where the help is): not the whole help under it.
    expect(written.stderr).toMatch(/^identity-sync: [^\n]+\n(see identity-sync apply --help\n)?$/);
    expect(written.stdout).toBe('');
  });

  it('says in one line that a file is missing, and where the help is', async () => {
    const { io, written } = captureIo(withKey);
    expect(await apply(['nowhere.csv'], io)).toBe(2);
    expect(written.stderr).toBe(
      'identity-sync: cannot read nowhere.csv: there is no such file (check the name, and the folder you run from)\n' +
        'see identity-sync apply --help\n',
    );
  });

  it("refuses a CSV without the command's id column, naming the columns it has", async () => {
    const wrong = join(dir, 'wrong.csv');
    await writeFile(wrong, 'customer,email\n1,a@example.com\n');
    const applying = captureIo(withKey);
    expect(await apply([wrong], applying.io)).toBe(2);
    expect(applying.written.stderr).toContain(
      'the CSV header has no externalid column (it has: customer, email)',
    );
    const binding = captureIo(withKey);
    expect(await bind([wrong], binding.io)).toBe(2);
    expect(binding.written.stderr).toContain('no customer id or id column');
    expect(binding.written.stderr.split('\n')).toHaveLength(3);

    const piped = join(dir, 'piped.csv');
    await writeFile(piped, 'externalId|email\n1|a@example.com\n');
    const separated = captureIo(withKey);
    expect(await apply([piped], separated.io)).toBe(2);
    expect(separated.written.stderr).toContain(
      'columns are separated by commas, semicolons or tabs, and this header has none',
    );
  });

  it('history needs the DynamoDB table and one customer', async () => {
    const noTable = captureIo({});
    expect(await history(['42'], noTable.io)).toBe(2);
    expect(noTable.written.stderr).toContain('set SYNC_STATE_TABLE');
    const noCustomer = captureIo({ SYNC_STATE_TABLE: 'state' });
    expect(await history([], noCustomer.io)).toBe(2);
    expect(noCustomer.written.stderr).toContain('give exactly one externalId');
  });
});

describe('one validated settings schema for every command', () => {
  it.each([
    [['dead-letters'], 'DEAD_LETTER_QUEUE_URL'],
    [['replay', '--reason', 'retries_exhausted', '--dry-run'], 'DEAD_LETTER_QUEUE_URL'],
    [['replay', '--reason', 'retries_exhausted', '--dry-run'], 'IDENTITY_CHANGES_QUEUE_URL'],
    [['replay-events', '--dry-run'], 'SHOPIFY_EVENT_FAILURES_QUEUE_URL'],
    [['export', 'c1'], 'DEAD_LETTER_QUEUE_URL'],
    [['forget', 'c1', '--yes'], 'DEAD_LETTER_QUEUE_URL'],
    [['doctor'], 'DEAD_LETTER_QUEUE_URL'],
  ])('%j refuses a malformed %s in one line naming it, before any request', async (args, setting) => {
    const { io, written } = captureIo({ SYNC_STATE_TABLE: 'state', [setting]: 'not a url' });
    expect(await identitySync(args, io)).toBe(2);
    expect(written.stderr).toBe(`identity-sync: Invalid configuration: ${setting}: Invalid URL\n`);
  });

  it('says which setting a command misses, in one line and where the help is', async () => {
    const { io, written } = captureIo({});
    expect(await identitySync(['replay', '--reason', 'retries_exhausted', '--dry-run'], io)).toBe(2);
    expect(written.stderr).toBe(
      'identity-sync: pass --queue-url or set DEAD_LETTER_QUEUE_URL (the dead-letter queue)\nsee identity-sync replay --help\n',
    );
  });
});

describe('the tenant and its key, decided before anything is read or written', () => {
  /** What a refusal must leave: one line on stderr, no results file, exit 2. */
  async function expectRefused(args: string[], env: NodeJS.ProcessEnv, message: string) {
    const results = join(dir, `refused-${Math.random().toString(36).slice(2)}.ndjson`);
    const { io, written } = captureIo(env);
    expect(await apply([changes, '--results', results, ...args], io)).toBe(2);
    expect(written.stderr).toBe(`identity-sync: ${message}\n`);
    expect(written.stdout).toBe('');
    expect(existsSync(results)).toBe(false);
  }

  it('refuses a tenant the settings do not name, with a bare key', async () => {
    await expectRefused(
      ['--tenant', 'dmeo'],
      { ...withKey, DEFAULT_TENANT: 'demo' },
      "unknown tenant 'dmeo': it is not DEFAULT_TENANT, nor in TENANT_POLICIES or SHOP_TENANTS (set TENANT_SECRET_PREFIX to use the deployment's tenants); nothing was read or written",
    );
  });

  it('takes a bare key for DEFAULT_TENANT and the tenants of TENANT_POLICIES and SHOP_TENANTS', () => {
    const settings = cliSettings({
      DEFAULT_TENANT: 'demo',
      TENANT_POLICIES: JSON.stringify({ acme: { dryRun: true } }),
      SHOP_TENANTS: JSON.stringify({ 'shop.myshopify.com': 'globex' }),
    });
    expect([...configuredTenants(settings)].sort()).toEqual(['acme', 'demo', 'globex']);
    expect([...configuredTenants(cliSettings({}))]).toEqual(['default']);
  });

  it("refuses a bare key with SYNC_STATE_TABLE: the workers' state takes only the tenant's own key", async () => {
    await expectRefused(
      [],
      { ...withKey, SYNC_STATE_TABLE: 'identity-sync-state', DEFAULT_TENANT: 'demo' },
      "SYNC_STATE_TABLE is the deployed workers' state: set TENANT_SECRET_PREFIX too, so the run uses tenant demo's own Klaviyo key from its secret (deployed: klaviyo-identity-sync/<stage>/tenants/); for a trial run with a bare key, unset SYNC_STATE_TABLE",
    );
  });
});
