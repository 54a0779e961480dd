import { readFile } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { expect } from 'vitest';
import type { CliIo } from '../../cli/io.js';
import type { RowResult } from '../../cli/results.js';

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

/**
 * The results file of a run over `inputPath`, its lines in its order (the input's), without the
 * row and target keys a rerun resumes by (each line must have them).
 */
export async function resultsOf(inputPath: string): Promise<RowResult[]> {
  const text = await readFile(`${inputPath}.results.ndjson`, 'utf8');
  return text
    .trim()
    .split('\n')
    .map((line) => {
      const { row, target, ...result } = JSON.parse(line) as RowResult;
      expect(row).toMatch(/^[0-9a-f]{16}$/);
      expect(target).toMatch(/^[0-9a-f]{16}$/);
      return result;
    });
}
