import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';

/**
 * A fresh folder for the tests of one file: made before them, removed after them (after the
 * file's later afterAll hooks, which run first). Read it inside hooks and tests.
 */
export function useTempDir(label: string): () => string {
  let dir: string | undefined;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), `klaviyo-identity-sync-${label}-`));
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });
  return () => {
    if (!dir) throw new Error('the temp dir is made in beforeAll');
    return dir;
  };
}
