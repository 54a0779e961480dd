import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * test/ is a leaf: the service, the CLI, the local stack, the demo and the benchmarks never import
 * from it (what they share with the tests lives in local/). Read from the sources, so a new
 * import of test code anywhere else fails here.
 */
const ROOT = join(import.meta.dirname, '..', '..');
const OUTSIDE_TEST = ['functions', 'lib', 'cli', 'local', 'scripts', 'bench'];

function sourceFiles(folder: string): string[] {
  return readdirSync(join(ROOT, folder), { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && /\.(ts|mjs|js)$/.test(entry.name))
    .map((entry) => relative(ROOT, join(entry.parentPath, entry.name)));
}

describe('layout', () => {
  it('nothing outside test/ imports from test/', () => {
    const offenders = OUTSIDE_TEST.flatMap(sourceFiles).filter((file) =>
      /from ['"][./]+\/test\/|import\(['"][./]+\/test\//.test(readFileSync(join(ROOT, file), 'utf8')),
    );
    expect(offenders).toEqual([]);
  });

  it('finds the sources it checks', () => {
    expect(OUTSIDE_TEST.flatMap(sourceFiles).length).toBeGreaterThan(50);
  });
});
