import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import { type BuildAppOptions, buildApp } from 'fauxqs';
import type { KlaviyoSandbox, SeedProfileInput } from '../../local/klaviyo-sandbox.js';

/**
 * Where the local stack keeps its state across restarts, when asked: `npm start --persist`
 * (npm passes it on as npm_config_persist) or `-- --persist` keeps it in `.local/` of the clone;
 * LOCAL_STATE_DIR names another folder. Undefined: everything in memory, lost on exit.
 */
export function localStateDir(
  serviceDir: string,
  env: NodeJS.ProcessEnv = process.env,
  argv: readonly string[] = process.argv,
): string | undefined {
  const named = env.LOCAL_STATE_DIR;
  if (named) return isAbsolute(named) ? named : resolve(serviceDir, named);
  if (argv.includes('--persist') || env.npm_config_persist === 'true') return join(serviceDir, '.local');
  return undefined;
}

/** What each peer keeps, and how: fauxqs and dynalite in their own stores, the sandbox a snapshot on exit. */
export const statePaths = (dir: string) => ({
  sqs: join(dir, 'sqs'),
  dynamodb: join(dir, 'dynamodb'),
  sandboxProfiles: join(dir, 'klaviyo-sandbox-profiles.json'),
});

type FauxqsApp = ReturnType<typeof buildApp>;

/**
 * fauxqs on loopback; with `dataDir`, its queues and messages in SQLite there (fauxqs's own
 * persistence: every change written through at once). fauxqs offers that only through
 * startFauxqs, which listens on every interface, so its stores are wired here as startFauxqs does.
 */
export async function fauxqsApp(dataDir?: string): Promise<FauxqsApp> {
  if (!dataDir) return buildApp({ host: '127.0.0.1', logger: false });
  await mkdir(dataDir, { recursive: true });
  const dist = new URL('.', import.meta.resolve('fauxqs'));
  const load = async <T>(path: string) => (await import(new URL(path, dist).href)) as T;
  const { SqsStore } = await load<{ SqsStore: new () => SqsStoreLike }>('sqs/sqsStore.js');
  const { SnsStore } = await load<{ SnsStore: new () => { persistence?: unknown } }>('sns/snsStore.js');
  const { S3Store } = await load<{ S3Store: new () => { persistence?: unknown } }>('s3/s3Store.js');
  const { PersistenceManager } = await load<{ PersistenceManager: new (dir: string) => PersistenceLike }>(
    'persistence.js',
  );
  const [sqsStore, snsStore, s3Store] = [new SqsStore(), new SnsStore(), new S3Store()];
  const persistence = new PersistenceManager(dataDir);
  persistence.load(sqsStore, snsStore, s3Store);
  sqsStore.persistence = persistence;
  snsStore.persistence = persistence;
  s3Store.persistence = persistence;
  for (const queue of sqsStore.allQueues()) queue.persistence = persistence;
  const app = buildApp({
    host: '127.0.0.1',
    logger: false,
    stores: { sqsStore, snsStore, s3Store } as unknown as BuildAppOptions['stores'],
  });
  app.addHook('preClose', async () => persistence.close());
  return app;
}

interface SqsStoreLike {
  persistence?: unknown;
  allQueues(): { persistence?: unknown }[];
}
interface PersistenceLike {
  load(sqs: unknown, sns: unknown, s3: unknown): void;
  close(): void;
}

/** The identifiers and names of each sandbox profile (ids kept), written on exit. */
export async function saveSandboxProfiles(sandbox: KlaviyoSandbox, path: string): Promise<void> {
  const profiles: SeedProfileInput[] = sandbox.listProfiles().map((profile) => ({
    id: profile.id,
    email: profile.email,
    phone_number: profile.phone_number,
    external_id: profile.external_id,
    first_name: profile.first_name,
    last_name: profile.last_name,
  }));
  await writeFile(`${path}.tmp`, `${JSON.stringify(profiles, null, 2)}\n`);
  await rename(`${path}.tmp`, path);
}

/** Seeds the profiles an earlier run saved; false when there is no snapshot yet. */
export async function loadSandboxProfiles(sandbox: KlaviyoSandbox, path: string): Promise<boolean> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
  for (const profile of JSON.parse(text) as SeedProfileInput[]) sandbox.seedProfile(profile);
  return true;
}
