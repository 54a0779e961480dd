import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Writable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { COMMANDS, identitySync } from '../cli/identity-sync.js';

/**
 * Writes docs/cli.md's list of each command's usage line and options, taken from the commands'
 * own `--help`, between the markers below, so the CLI's page and its help agree (one source).
 * Run it after changing a command's usage: `sh scripts/ensure-node.sh tsx scripts/generate-cli-docs.ts`.
 * A unit test fails while docs/cli.md differs from what this generates.
 */
const repo = resolve(import.meta.dirname, '..');
export const CLI_DOCS = resolve(repo, 'docs/cli.md');
export const START =
  "<!-- cli-usage: generated from each command's --help by scripts/generate-cli-docs.ts -->";
export const END = '<!-- /cli-usage -->';

/** What `identity-sync <command> --help` prints. */
export async function helpOf(command: string): Promise<string> {
  let text = '';
  const sink = new Writable({
    write(chunk, _encoding, done) {
      text += String(chunk);
      done();
    },
  });
  await identitySync([command, '--help'], { stdout: sink, stderr: sink, env: {} });
  return text;
}

/** The usage line and the options (`--flag`, in the order the help lists them) of a help text. */
export function usageAndOptions(help: string): { usage: string; options: string[] } {
  const usage = (/^Usage: (identity-sync .*)$/m.exec(help)?.[1] ?? '').trim();
  const options = new Set<string>();
  for (const [, flag] of help.matchAll(/^ {2}(?:-\w, )?(--[a-z][a-z-]*)/gm)) options.add(flag as string);
  for (const [, flag] of help.matchAll(/^ {2}--[a-z][a-z-]* [^ ]+, (--[a-z][a-z-]*)/gm))
    options.add(flag as string);
  return { usage, options: [...options] };
}

/** docs/cli.md's block: one item a command. */
export async function cliUsageBlock(): Promise<string> {
  const lines = [START];
  for (const command of Object.keys(COMMANDS)) {
    const { usage, options } = usageAndOptions(await helpOf(command));
    lines.push(
      `- \`${usage}\`${options.length > 0 ? `: ${options.map((flag) => `\`${flag}\``).join(', ')}` : ''}`,
    );
  }
  lines.push(END);
  return lines.join('\n');
}

/** The page with its block replaced by `block`. */
export function withBlock(page: string, block: string): string {
  const start = page.indexOf(START);
  const end = page.indexOf(END);
  if (start === -1 || end < start) throw new Error(`docs/cli.md has no ${START} … ${END} block`);
  return `${page.slice(0, start)}${block}${page.slice(end + END.length)}`;
}

async function generate() {
  writeFileSync(CLI_DOCS, withBlock(readFileSync(CLI_DOCS, 'utf8'), await cliUsageBlock()));
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await generate();
