import { Writable } from 'node:stream';
import type { CliIo } from '../../cli/io.js';

/** An io for running CLI commands in-process: what they write is kept for the test to read. */
export function captureIo(env: NodeJS.ProcessEnv = {}, { tty = false } = {}) {
  const written = { stdout: '', stderr: '' };
  const sink = (name: keyof typeof written) =>
    Object.assign(
      new Writable({
        write(chunk, _encoding, done) {
          written[name] += String(chunk);
          done();
        },
      }),
      { isTTY: tty },
    );
  const io: CliIo = { stdout: sink('stdout'), stderr: sink('stderr'), env };
  return { io, written };
}

/** The characters of `text` a terminal would act on (C0 but the line break, DEL, C1, bidi controls). */
export const rawControlCharacters = (text: string) =>
  [...text].filter((char) => {
    const code = char.codePointAt(0) as number;
    return (
      (code < 0x20 && char !== '\n') ||
      (code >= 0x7f && code <= 0x9f) ||
      [0x061c, 0x200e, 0x200f, 0x2028, 0x2029].includes(code) ||
      (code >= 0x202a && code <= 0x202e) ||
      (code >= 0x2066 && code <= 0x2069)
    );
  });
