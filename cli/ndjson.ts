import { readFile } from 'node:fs/promises';
import { UsageError } from './io.js';

/**
 * The lines of an append-only NDJSON file (the results, a duplicates checkpoint, the bulk jobs
 * journal), each parsed, or undefined when it is no JSON. After the last line break there is at
 * most a line a crash cut short: it is never read.
 */
export function completeLines(text: string): unknown[] {
  return text
    .slice(0, text.lastIndexOf('\n') + 1)
    .split('\n')
    .slice(0, -1)
    .map((line) => {
      try {
        return JSON.parse(line) as unknown;
      } catch {
        return undefined;
      }
    });
}

/** The file's text; empty when it does not exist yet. `what` names it in the error otherwise. */
export async function readIfThere(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw new UsageError(`cannot read ${what}: ${(error as Error).message}`);
  }
}
