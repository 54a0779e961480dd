import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { COMMANDS } from '../../cli/identity-sync.js';
import { cliUsageBlock, END, README, START, usageAndOptions } from '../../scripts/generate-cli-docs.js';

/**
 * The README's CLI section lists each command's usage line and options as its --help does. When
 * this fails after a change to a command's usage, run `sh scripts/ensure-node.sh tsx scripts/generate-cli-docs.ts`.
 */
describe("the README's CLI section", () => {
  it("lists every command's usage and options as its --help says them", async () => {
    const readme = readFileSync(README, 'utf8');
    const block = readme.slice(readme.indexOf(START), readme.indexOf(END) + END.length);
    expect(block).toBe(await cliUsageBlock());
    for (const command of Object.keys(COMMANDS)) expect(block).toContain(`\`identity-sync ${command}`);
  });

  it('reads the usage line and the options from a help text', () => {
    const help = [
      'Usage: identity-sync send [--as erp] (--file PATH | CHANGE)',
      '',
      'Options:',
      '  --as SOURCE     where',
      '  --email E, --phone P   identifiers',
      '  -h, --help      this help',
      'Text mentioning --not-an-option.',
    ].join('\n');
    expect(usageAndOptions(help)).toEqual({
      usage: 'identity-sync send [--as erp] (--file PATH | CHANGE)',
      options: ['--as', '--email', '--help', '--phone'],
    });
  });
});
