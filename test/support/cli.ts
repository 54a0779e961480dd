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
