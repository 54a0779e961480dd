import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { nodeVersionProblem } from '../../bin/node-version.mjs';

const bin = fileURLToPath(new URL('../../bin/identity-sync.mjs', import.meta.url));

describe('bin/identity-sync.mjs', () => {
  it('says in one line which Node to install on one that is too old, and runs on 22 and later', () => {
    expect(nodeVersionProblem('20.11.1')).toBe(
      'identity-sync needs Node.js 22 or later (24 recommended), this is 20.11.1: install it (https://nodejs.org, or `nvm install 24`), or in the clone run `npm run identity-sync -- <command>`, which brings its own',
    );
    expect(nodeVersionProblem('18.0.0')).toMatch(/^[^\n]+$/);
    expect(nodeVersionProblem('22.0.0')).toBeUndefined();
    expect(nodeVersionProblem('24.3.0')).toBeUndefined();
  });

  it('runs the CLI from any folder, with no warning on stderr', () => {
    const run = spawnSync(process.execPath, [bin, '--help'], { cwd: tmpdir(), encoding: 'utf8' });
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/^Usage: identity-sync <command>/);
    expect(run.stderr).toBe('');
  });
});
