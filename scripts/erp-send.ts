import { send } from '../cli/commands/send.js';

/** `npx tsx scripts/erp-send.ts --url … --tenant … …`: the CLI's send command, until the bin has it. */
process.exitCode = await send(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
});
