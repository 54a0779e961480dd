import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { settingsSchema } from '../../lib/config.js';
import { offlineEnvironment, SERVICE_DIR } from '../../scripts/local-stack/offline.js';
import { startLocalPeers } from '../../scripts/local-stack/peers.js';
import { type Json, localServiceConfig, usePackagedService } from '../support/osls.js';

/**
 * Every setting lib/config.ts parses reaches the functions, deployed and under `npm start`, with the
 * schema's defaults, and docs/deploying.md documents each: the list is the schema's, so a new setting
 * fails here until it is wired everywhere.
 */
type SettingName = keyof typeof settingsSchema.shape;
const SETTINGS = Object.keys(settingsSchema.shape) as SettingName[];

/** Defaults serverless.yml chooses over the schema's on purpose: each stage reads its own secrets. */
const STAGE_DEFAULTS: Partial<Record<SettingName, string>> = {
  TENANT_SECRET_PREFIX: 'klaviyo-identity-sync/dev/tenants/',
};

/** Settings naming a resource of the stack, which a function gets as a reference to it. */
const STACK_RESOURCES: Partial<Record<SettingName, string>> = { EXPORTS_BUCKET: 'ExportsBucket' };

const packaged = usePackagedService();

/** Each function's environment in the template, by function name. */
function functionEnvironments(): [string, Json][] {
  return Object.values(packaged.resources)
    .filter((resource) => resource.Type === 'AWS::Lambda::Function')
    .map(({ Properties }) => [
      String(Properties.FunctionName),
      (Properties.Environment as { Variables: Json }).Variables,
    ]);
}

describe('settings in AWS (the packaged template)', () => {
  it('gives every function every setting', () => {
    expect(functionEnvironments()).toHaveLength(4);
    for (const [name, variables] of functionEnvironments()) {
      expect(Object.keys(variables), name).toEqual(expect.arrayContaining(SETTINGS));
    }
  });

  it.each(SETTINGS)("defaults %s to the schema's default, or to the stack's resource", (setting) => {
    const field = settingsSchema.shape[setting];
    const schemaDefault = field.safeParse(undefined);
    for (const [name, variables] of functionEnvironments()) {
      const value = variables[setting];
      if (STACK_RESOURCES[setting] !== undefined)
        expect(value, name).toEqual({ Ref: STACK_RESOURCES[setting] });
      else if (!schemaDefault.success) expect(value, name).toEqual({ Ref: expect.any(String) });
      else if (STAGE_DEFAULTS[setting] !== undefined) expect(value, name).toBe(STAGE_DEFAULTS[setting]);
      else expect(field.parse(value), `${name}: ${setting}=${value}`).toEqual(schemaDefault.data);
    }
  });
});

describe('settings under npm start (the local stack)', () => {
  it("hands every setting to the functions: the shell's value, unless the stack sets its own", async () => {
    const peers = await startLocalPeers();
    try {
      const shell = {
        ...process.env,
        ...Object.fromEntries(SETTINGS.map((setting) => [setting, `from the shell: ${setting}`])),
      };
      // What startOffline runs osls with; serverless-offline hands the functions provider.environment.
      const env = offlineEnvironment({ env: peers.env, baseEnv: shell, httpPort: 3000, lambdaPort: 3002 });
      const { environment } = (await localServiceConfig(env)).provider as { environment: Json };
      for (const setting of SETTINGS) {
        expect(environment[setting], setting).toBe(peers.env[setting] ?? shell[setting]);
      }
    } finally {
      await peers.stop();
    }
  }, 30_000);
});

describe('settings in docs/deploying.md', () => {
  /** The Configuration table's rows: each variable named in the first column, with its default. */
  async function documentedDefaults(): Promise<Map<string, string>> {
    const page = await readFile(join(SERVICE_DIR, 'docs', 'deploying.md'), 'utf8');
    const section = page.split(/^## Configuration$/m)[1]?.split(/^## /m)[0] ?? '';
    const defaults = new Map<string, string>();
    for (const line of section.split('\n').filter((row) => row.startsWith('| `'))) {
      const [names = '', documentedDefault = ''] = line.split('|').slice(1);
      for (const [, name] of names.matchAll(/`(\w+)`/g))
        defaults.set(name as string, documentedDefault.trim());
    }
    return defaults;
  }

  it('lists every setting in its Configuration table', async () => {
    expect([...(await documentedDefaults()).keys()]).toEqual(expect.arrayContaining(SETTINGS));
  });

  it("gives the template's default of every setting that has one", async () => {
    const defaults = await documentedDefaults();
    const [, variables] = functionEnvironments()[0] ?? [];
    const withDefaults = SETTINGS.filter((setting) => typeof variables?.[setting] === 'string');
    expect(withDefaults.length).toBeGreaterThan(0);
    for (const setting of withDefaults) {
      expect(defaults.get(setting)?.replaceAll('<stage>', 'dev'), setting).toBe(
        `\`${variables?.[setting]}\``,
      );
    }
  });
});
