import { apply } from './commands/apply.js';
import { bind } from './commands/bind.js';
import { deadLetters } from './commands/dead-letters.js';
import { history } from './commands/history.js';
import { send } from './commands/send.js';
import { type CliIo, type Command, EXIT_OK, EXIT_USAGE } from './io.js';

/** `identity-sync <command> …`: run through bin/identity-sync.mjs (npx identity-sync) or `tsx cli/identity-sync.ts`. */
const COMMANDS: Record<string, { run: Command; summary: string }> = {
  apply: { run: apply, summary: 'apply identity changes from an NDJSON or CSV file to Klaviyo' },
  bind: { run: bind, summary: 'set external_id on profiles found by email or phone (Shopify export)' },
  'dead-letters': {
    run: deadLetters,
    summary: 'report what is parked on the dead-letter queue and why, leaving it there',
  },
  history: { run: history, summary: "print a customer's audit trail (needs SYNC_STATE_TABLE)" },
  send: { run: send, summary: 'sign a change and post it to the ERP webhook endpoint' },
};

const WIDTH = Math.max(...Object.keys(COMMANDS).map((name) => name.length)) + 2;

const USAGE = `Usage: identity-sync <command> [options]

Commands:
${Object.entries(COMMANDS)
  .map(([name, { summary }]) => `  ${name.padEnd(WIDTH)}${summary}`)
  .join('\n')}

Run identity-sync <command> --help for a command's options.`;

export async function identitySync(args: string[], io: CliIo): Promise<number> {
  const [name, ...rest] = args;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    (name === undefined ? io.stderr : io.stdout).write(`${USAGE}\n`);
    return name === undefined ? EXIT_USAGE : EXIT_OK;
  }
  const command = COMMANDS[name];
  if (!command) {
    io.stderr.write(`identity-sync: unknown command '${name}'\n\n${USAGE}\n`);
    return EXIT_USAGE;
  }
  return command.run(rest, io);
}

export async function main(): Promise<void> {
  process.exitCode = await identitySync(process.argv.slice(2), {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
  });
}

// Run as a script (`tsx cli/identity-sync.ts …`); bin/identity-sync.mjs imports it and calls main().
if (import.meta.main) await main();
