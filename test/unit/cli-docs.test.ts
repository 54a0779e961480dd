import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { COMMANDS } from '../../cli/identity-sync.js';
import { CLI_DOCS, cliUsageBlock, END, START, usageAndOptions } from '../../scripts/generate-cli-docs.js';

/**
 * docs/cli.md lists each command's usage line and options as its --help does. When
 * this fails after a change to a command's usage, run `sh scripts/ensure-node.sh tsx scripts/generate-cli-docs.ts`.
 */
describe("the CLI's page, docs/cli.md", () => {
  it("lists every command's usage and options as its --help says them", async () => {
    const page = readFileSync(CLI_DOCS, 'utf8');
    const block = page.slice(page.indexOf(START), page.indexOf(END) + END.length);
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
