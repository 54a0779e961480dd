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

  it('no test reads the reference folder beside the checkout: fixtures live in test/fixtures', () => {
    // Spelt in pieces, so this file does not name it itself.
    const beside = ['..', 'shared'].join('/');
    const tests = sourceFiles('test');
    expect(tests.length).toBeGreaterThan(50);
    expect(tests.filter((file) => readFileSync(join(ROOT, file), 'utf8').includes(beside))).toEqual([]);
  });

  it('names the source of every fixture in test/fixtures/SOURCES.md', () => {
    const sources = readFileSync(join(ROOT, 'test', 'fixtures', 'SOURCES.md'), 'utf8');
    const fixtures = readdirSync(join(ROOT, 'test', 'fixtures'), { withFileTypes: true, recursive: true })
      .filter((entry) => entry.isFile() && entry.name !== 'SOURCES.md')
      .map((entry) => entry.name);
    expect(fixtures.length).toBeGreaterThan(0);
    // Each file by its name, or (the samples) by the pattern that names them.
    expect(
      fixtures.filter(
        (name) =>
          !sources.includes(name) && !(name.startsWith('customers-') && sources.includes('customers-*.json')),
      ),
    ).toEqual([]);
  });
});
