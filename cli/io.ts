import { createInterface } from 'node:readline/promises';
import { ConfigurationError } from '../lib/errors.js';
import { printable } from './terminal.js';

/** What a command gets instead of `process`, so tests run commands in-process with their own streams. */
export interface CliIo {
  stdout: NodeJS.WritableStream;
  /** `isTTY` decides how progress is drawn. */
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  env: NodeJS.ProcessEnv;
  /** Where a question is answered (replay's confirmation); `isTTY` says whether a person is there. */
  stdin?: NodeJS.ReadableStream & { isTTY?: boolean };
  /** Aborted on Ctrl-C: a run stops starting rows and leaves its results file ready to resume. */
  signal?: AbortSignal;
}

/** A subcommand: its arguments (after the subcommand's name) in, its exit code out. */
export type Command = (args: string[], io: CliIo) => Promise<number>;

export const EXIT_OK = 0;
/** Something needs a person: a row invalid, failed or parked, or the command failed. */
export const EXIT_ATTENTION = 1;
export const EXIT_USAGE = 2;
/** Stopped by Ctrl-C (128 + SIGINT), as shells report it. */
export const EXIT_INTERRUPTED = 130;

/** The command line (or the environment it relies on) is wrong: exit 2 with the usage. */
export class UsageError extends Error {}

/**
 * Runs a command's body and turns what escapes it into an exit code: usage and configuration
 * errors exit 2 with their one line and where the help is (the help itself would bury the line),
 * anything else exits 1 with its message (no stack: it is for people).
 */
export async function runCommand(io: CliIo, usage: string, body: () => Promise<number>): Promise<number> {
  try {
    return await body();
  } catch (error) {
    // Messages can hold outside text (Klaviyo's answers, a file's values): printed neutralised.
    if (isUsageError(error)) {
      io.stderr.write(`identity-sync: ${printable((error as Error).message)}\n${helpPointer(usage)}\n`);
      return EXIT_USAGE;
    }
    if (error instanceof ConfigurationError) {
      io.stderr.write(`identity-sync: ${printable(error.message)}\n`);
      return EXIT_USAGE;
    }
    io.stderr.write(`identity-sync: ${printable(String((error as Error)?.message ?? error))}\n`);
    return EXIT_ATTENTION;
  }
}

/** `see identity-sync apply --help`, the command named by its usage's first line. */
export function helpPointer(usage: string): string {
  const command = /^Usage: identity-sync ([\w-]+)/.exec(usage)?.[1];
  return `see identity-sync ${command && !command.startsWith('<') ? `${command} ` : ''}--help`;
}

/** Ours, or node:util parseArgs refusing an option (its errors carry an ERR_PARSE_ARGS_* code). */
const isUsageError = (error: unknown) =>
  error instanceof UsageError || String((error as { code?: unknown })?.code).startsWith('ERR_PARSE_ARGS');

export const counted = (count: number, noun: string) => `${count} ${noun}${count === 1 ? '' : 's'}`;

/** Asks on stderr and reads the answer from stdin: only `y` or `yes` is a yes. */
export async function confirm(io: CliIo, question: string): Promise<boolean> {
  const prompt = createInterface({ input: io.stdin as NodeJS.ReadableStream, output: io.stderr });
  try {
    return /^y(es)?$/i.test((await prompt.question(question)).trim());
  } finally {
    prompt.close();
  }
}

/** A flag's value, which must be a positive number (or integer): else a usage error. */
export function positiveNumber(flag: string, text: string, { integer = false } = {}): number {
  const value = Number(text);
  if (!(value > 0) || (integer && !Number.isInteger(value))) {
    throw new UsageError(`${flag} must be a positive ${integer ? 'integer' : 'number'}, got '${text}'`);
  }
  return value;
}

/** What a run aborts to stop early; Ctrl-C (`io.signal`) aborts it too, with `interruptedReason`. */
export function stopController(io: CliIo, interruptedReason?: unknown): AbortController {
  const stop = new AbortController();
  const interrupted = () => stop.abort(interruptedReason);
  if (io.signal?.aborted) interrupted();
  else io.signal?.addEventListener('abort', interrupted, { once: true });
  return stop;
}
