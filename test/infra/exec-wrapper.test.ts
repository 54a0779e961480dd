import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * functions/node-flags.sh, the worker's exec wrapper (serverless.yml: AWS_LAMBDA_EXEC_WRAPPER):
 * Lambda runs it with the runtime's command line; it must start that command with
 * LAMBDA_NODE_FLAGS after the runtime's own flags and before the entry script, the rest untouched.
 * `printf` stands in for node, printing the arguments it is given, one a line.
 */
const WRAPPER = join(import.meta.dirname, '..', '..', 'functions', 'node-flags.sh');

function commandLine(args: string[], flags?: string): string[] {
  const env = { PATH: process.env.PATH ?? '', ...(flags !== undefined && { LAMBDA_NODE_FLAGS: flags }) };
  const run = spawnSync(WRAPPER, ['printf', '%s\\n', ...args], { env, encoding: 'utf8' });
  expect(run.status, run.stderr).toBe(0);
  return run.stdout.split('\n').slice(0, -1);
}

describe("the worker's exec wrapper", () => {
  it("puts LAMBDA_NODE_FLAGS after the runtime's flags, just before its entry script", () => {
    expect(
      commandLine(
        ['--expose-gc', '--max-semi-space-size=6', '--max-old-space-size=116', '/var/runtime/index.mjs'],
        '--max-semi-space-size=1 --stack-trace-limit=20',
      ),
    ).toEqual([
      '--expose-gc',
      '--max-semi-space-size=6',
      '--max-old-space-size=116',
      '--max-semi-space-size=1',
      '--stack-trace-limit=20',
      '/var/runtime/index.mjs',
    ]);
  });

  it('starts the command as it is without flags, and keeps arguments with spaces whole', () => {
    expect(commandLine(['--a', 'an entry.mjs'])).toEqual(['--a', 'an entry.mjs']);
    expect(commandLine(['--a', 'an entry.mjs'], '')).toEqual(['--a', 'an entry.mjs']);
  });
});
