import { apply } from './commands/apply.js';
import { bind } from './commands/bind.js';
import { deadLetters } from './commands/dead-letters.js';
import { doctor } from './commands/doctor.js';
import { duplicates } from './commands/duplicates.js';
import { exportCustomer } from './commands/export.js';
import { forget } from './commands/forget.js';
import { history } from './commands/history.js';
import { replay } from './commands/replay.js';
import { replayEvents } from './commands/replay-events.js';
import { send } from './commands/send.js';
import { type CliIo, type Command, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE } from './io.js';
import { printable } from './terminal.js';

/** `identity-sync <command> …`: run through bin/identity-sync.mjs (npx identity-sync) or `tsx cli/identity-sync.ts`. */
export const COMMANDS: Record<string, { run: Command; summary: string }> = {
  apply: { run: apply, summary: 'apply identity changes from an NDJSON or CSV file to Klaviyo' },
  bind: { run: bind, summary: 'set external_id on profiles found by email or phone (Shopify export)' },
  'dead-letters': {
    run: deadLetters,
    summary: 'report what is parked on the dead-letter queue and why, leaving it there',
  },
  doctor: { run: doctor, summary: 'check a deployed (or the local) stack is ready for a tenant' },
  duplicates: {
    run: duplicates,
    summary: 'find profiles Klaviyo holds twice (typos, relay emails), report them, merge on request',
  },
  export: {
    run: exportCustomer,
    summary: 'print as JSON everything held about one customer (a data request)',
  },
  forget: { run: forget, summary: 'erase everything held about one customer (as customers/redact does)' },
  history: { run: history, summary: "print a customer's audit trail (needs SYNC_STATE_TABLE)" },
  replay: {
    run: replay,
    summary: 'move parked changes of one reason back to the changes queue, each customer in order',
  },
  'replay-events': {
    run: replayEvents,
    summary: 'send Shopify EventBridge events Lambda could not deliver through again',
  },
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
    io.stderr.write(
      `identity-sync: unknown command '${printable(name)}' (the commands: ${Object.keys(COMMANDS).join(', ')})\nsee identity-sync --help\n`,
    );
    return EXIT_USAGE;
  }
  return command.run(rest, io);
}

export async function main(): Promise<void> {
  // The first Ctrl-C asks the run to stop cleanly (rows under way finish, results stay resumable);
  // a second one quits at once.
  const interrupt = new AbortController();
  process.once('SIGINT', () => {
    process.stderr.write(
      '\nidentity-sync: stopping after the rows under way (Ctrl-C again to quit at once)\n',
    );
    interrupt.abort();
    process.once('SIGINT', () => process.exit(EXIT_INTERRUPTED));
  });
  process.exitCode = await identitySync(process.argv.slice(2), {
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
    env: process.env,
    signal: interrupt.signal,
  });
}

// Run as a script (`tsx cli/identity-sync.ts …`); bin/identity-sync.mjs imports it and calls main().
if (import.meta.main) await main();
