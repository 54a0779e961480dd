import { type ParseArgsConfig, parseArgs } from 'node:util';
import { type CliIo, type Command, EXIT_OK, runCommand, UsageError } from './io.js';

type Options = NonNullable<ParseArgsConfig['options']>;

const HELP = { help: { type: 'boolean', short: 'h', default: false } } as const;

type Config<O extends Options, P extends boolean> = {
  args: string[];
  options: O & typeof HELP;
  allowPositionals: P;
};

/** A command line as node:util parseArgs reads it: `values` (typed by the options) and `positionals`. */
export type CommandLine<O extends Options, P extends boolean = false> = ReturnType<
  typeof parseArgs<Config<O, P>>
>;

/**
 * A subcommand of the CLI: reads its options (and -h/--help, which prints `usage`), then runs
 * `body`; what escapes it becomes an exit code with one line on stderr (runCommand).
 */
export function commandLine<const O extends Options, const P extends boolean = false>(
  usage: string,
  config: { options: O; allowPositionals?: P },
  body: (line: CommandLine<O, P>, io: CliIo) => Promise<number>,
): Command {
  return (args, io) =>
    runCommand(io, usage, async () => {
      const line = parseArgs({
        args,
        allowPositionals: config.allowPositionals ?? false,
        options: { ...config.options, ...HELP },
      }) as CommandLine<O, P>;
      if ((line.values as { help?: boolean }).help) {
        io.stdout.write(`${usage}\n`);
        return EXIT_OK;
      }
      return body(line, io);
    });
}

/** The one customer a command is about: `<externalId>`. */
export function oneExternalId(positionals: readonly string[]): string {
  const [externalId, ...extra] = positionals;
  if (!externalId || extra.length > 0) throw new UsageError('give exactly one externalId');
  return externalId;
}

/** A queue's URL: the flag's, else the setting's; missing, a usage error saying how to give it. */
export function queueUrlOf(flag: string | undefined, setting: string | undefined, missing: string): string {
  const url = flag || setting;
  if (!url) throw new UsageError(missing);
  return url;
}
