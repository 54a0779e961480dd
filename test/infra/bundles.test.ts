import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { type Bundle, bundleAsDeployed, deployedFunctions } from '../../bench/bundle.js';
import { useTempDir } from '../support/temp-dir.js';

/**
 * The functions' bundles, built with the esbuild options serverless.yml gives serverless-esbuild
 * (bench/bundle.ts reads them): what each holds, and that their stack traces map to the sources.
 */
const tempDir = useTempDir('bundles');
const bundles = new Map<string, Bundle>();

beforeAll(async () => {
  const dir = tempDir();
  for (const fn of await deployedFunctions()) {
    bundles.set(fn.name, await bundleAsDeployed(fn.entry, join(dir, fn.name)));
  }
}, 60_000);

const inputsOf = (name: string) => {
  const bundle = bundles.get(name);
  const output = Object.values(bundle?.metafile.outputs ?? {}).find((o) => o.entryPoint);
  return Object.keys(output?.inputs ?? {});
};
const WORKER = 'sync-worker';
const intakes = () => [...bundles.keys()].filter((name) => name !== WORKER);

describe('stack traces of a bundled function', () => {
  /** Runs a bundle as the main module without its settings: loadConfig throws at import. */
  function crash(name: string, nodeFlags: string[]) {
    const { IDENTITY_CHANGES_QUEUE_URL: _, ...env } = process.env;
    const result = spawnSync(process.execPath, [...nodeFlags, bundles.get(name)?.file ?? ''], {
      env: { ...env, NODE_OPTIONS: '' },
      encoding: 'utf8',
    });
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain('IDENTITY_CHANGES_QUEUE_URL');
    return result.stderr;
  }

  it('map to lib/…ts lines under --enable-source-maps', () => {
    expect(crash('shopify-webhook', ['--enable-source-maps'])).toMatch(/lib\/config\.ts:\d+:\d+/);
  });

  it('name only the bundle without it (what the flag changes)', () => {
    const stack = crash('shopify-webhook', []);
    expect(stack).not.toMatch(/lib\/config\.ts/);
    expect(stack).toMatch(/shopify-webhook\.mjs:\d+/);
  });
});

describe('what each bundle holds', () => {
  it('builds every function serverless.yml deploys, the worker among them', () => {
    expect([...bundles.keys()]).toContain(WORKER);
    expect(intakes().length).toBeGreaterThanOrEqual(2);
  });

  it('no intake holds the Klaviyo client (the worker’s)', () => {
    for (const name of intakes())
      expect(
        inputsOf(name).filter((input) => input.includes('lib/klaviyo/client.ts')),
        name,
      ).toEqual([]);
  });

  // The Shopify intake alone writes to the table: the digests of the bodies it has seen (replays).
  it('no intake but shopify-webhook holds the DynamoDB client (the state table is the worker’s)', () => {
    for (const name of intakes().filter((name) => name !== 'shopify-webhook'))
      expect(
        inputsOf(name).filter((input) => input.includes('node_modules/@aws-sdk/client-dynamodb/')),
        name,
      ).toEqual([]);
  });

  it.each(['node_modules/libphonenumber-js/', 'lib/normalize.ts'])(
    'the worker does not hold %s (it never reads a phone number as typed)',
    (part) => {
      expect(inputsOf(WORKER).filter((input) => input.includes(part))).toEqual([]);
    },
  );

  // Exports are rare (a data request): the S3 client is Lambda's runtime's, imported at first use.
  it('no bundle holds the S3 client; the worker imports it when it first exports', async () => {
    for (const name of bundles.keys())
      expect(
        inputsOf(name).filter((input) => input.includes('node_modules/@aws-sdk/client-s3/')),
        name,
      ).toEqual([]);
    const worker = await readFile(bundles.get(WORKER)?.file ?? '', 'utf8');
    expect(worker).toContain('import("@aws-sdk/client-s3")');
    expect(worker).not.toMatch(/^import .* from "@aws-sdk\/client-s3";$/m);
  });

  it('holds zod without its translations: zod is imported as a namespace (import * as z)', () => {
    for (const name of bundles.keys()) {
      const locales = inputsOf(name).filter((input) => /zod\/v4\/locales\/(?!en\.js)/.test(input));
      expect(locales, `${name}: a named import of z keeps every locale`).toEqual([]);
    }
  });

  it('requires Node built-ins where first used instead of importing them at the top', async () => {
    for (const [name, bundle] of bundles) {
      const text = await readFile(bundle.file, 'utf8');
      expect(text.match(/^import .* from "(node:)?(http|https|crypto|zlib|os|fs)";$/gm), name).toBeNull();
    }
  });
});
