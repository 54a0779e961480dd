import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll } from 'vitest';
import { LOCAL_STAGE, OSLS, SERVICE_DIR } from '../../scripts/local-stack/offline.js';
import { useTempDir } from './temp-dir.js';

// osls (the service's own copy) on serverless.yml, offline: packaging and printing need no AWS account.
const run = promisify(execFile);

export type Json = Record<string, unknown>;
export interface Resource {
  Type: string;
  Properties: Json;
}

export interface PackagedService {
  /** The CloudFormation template's resources. */
  readonly resources: Record<string, Resource>;
  /** Where osls wrote the template and the functions' zips. */
  readonly dir: string;
}

async function osls(args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  const { stdout } = await run(process.execPath, [OSLS, ...args], {
    cwd: SERVICE_DIR,
    env,
    timeout: 170_000,
    maxBuffer: 16 * 1024 * 1024,
  });
  return stdout;
}

/**
 * `osls package` (dummy credentials, default stage `dev`) for the tests of one file, into a temp
 * dir removed after them. Every variable serverless.yml reads with `${env:…}` is left out, so the
 * template under test is the default one whatever this shell exports.
 */
export function usePackagedService(): PackagedService {
  const tempDir = useTempDir('package');
  let packaged: PackagedService | undefined;

  beforeAll(async () => {
    const dir = join(tempDir(), 'package');
    const env: NodeJS.ProcessEnv = { ...process.env };
    const serverlessYml = await readFile(join(SERVICE_DIR, 'serverless.yml'), 'utf8');
    for (const [, name] of serverlessYml.matchAll(/\$\{env:(\w+)/g)) delete env[name as string];
    delete env.AWS_PROFILE;
    await osls(['package', '--package', dir], {
      ...env,
      AWS_ACCESS_KEY_ID: 'AKIAIOSFODNN7EXAMPLE',
      AWS_SECRET_ACCESS_KEY: 'not-a-real-secret',
      AWS_REGION: 'us-east-1',
      // serverless-esbuild joins this onto the service dir: a relative path into our temp dir, so
      // parallel runs don't share (and delete) one work folder.
      SLS_ESBUILD_WORK_FOLDER: relative(SERVICE_DIR, join(tempDir(), 'esbuild')),
    });
    const template = JSON.parse(
      await readFile(join(dir, 'cloudformation-template-update-stack.json'), 'utf8'),
    ) as { Resources: Record<string, Resource> };
    packaged = { resources: template.Resources, dir };
  }, 180_000);

  const current = () => {
    if (!packaged) throw new Error('the service has not been packaged');
    return packaged;
  };
  return {
    get resources() {
      return current().resources;
    },
    get dir() {
      return current().dir;
    },
  };
}

/**
 * serverless.yml as osls resolves it for stage `local` in `env`: what serverless-offline runs, the
 * functions' environment (`provider.environment`) included.
 */
export async function localServiceConfig(env: NodeJS.ProcessEnv): Promise<Json & { provider: Json }> {
  return serviceConfig(LOCAL_STAGE, env);
}

/** serverless.yml as osls resolves it for `stage` in `env`. */
export async function serviceConfig(
  stage: string,
  env: NodeJS.ProcessEnv,
): Promise<Json & { provider: Json }> {
  return JSON.parse(await osls(['print', '--stage', stage, '--format', 'json'], env));
}
