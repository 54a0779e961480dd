import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { SERVICE_DIR } from '../scripts/local-stack/offline.js';

/**
 * `npm run bench [-- --list]`: every benchmark of the project, one after the other: each npm
 * script named `bench:…` in package.json, so a new benchmark joins by being named so. `--list`
 * says how to run each instead. Exits non-zero when one fails, after running the others.
 */
const { values } = parseArgs({ options: { list: { type: 'boolean', default: false } } });
const { scripts } = JSON.parse(await readFile(join(SERVICE_DIR, 'package.json'), 'utf8')) as {
  scripts: Record<string, string>;
};
const benchmarks = Object.keys(scripts).filter((name) => name.startsWith('bench:'));

if (values.list) {
  for (const name of benchmarks) console.log(`npm run ${name.padEnd(24)} # ${scripts[name]}`);
} else {
  const failed: string[] = [];
  for (const name of benchmarks) {
    console.log(`\n=== npm run ${name}\n`);
    const { status } = spawnSync('npm', ['run', '--silent', name], { cwd: SERVICE_DIR, stdio: 'inherit' });
    if (status !== 0) failed.push(name);
  }
  if (failed.length > 0) {
    console.error(`\nFailed: ${failed.join(', ')}`);
    process.exitCode = 1;
  }
}
