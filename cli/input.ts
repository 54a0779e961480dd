import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { parseCsv, separatorOf } from './csv.js';
import { UsageError } from './io.js';

/**
 * An input row: its values by field name (lower-cased, so `Email` and `email` are one column), or
 * why the line could not be read. Empty values are left out: an empty cell means "not given".
 */
export type InputRow = { line: number; values: Record<string, string> } | { line: number; problem: string };

export interface InputFile {
  rows: InputRow[];
  /** The CSV header's columns (lower-cased); undefined for NDJSON, where each line names its own. */
  columns?: string[];
}

/** Reads a whole file: the progress bar needs the row count before the first row is applied. */
export async function readInputFile(path: string): Promise<InputFile> {
  const format = formatOf(path);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new UsageError(`cannot read ${path}: ${whyUnreadable(error as NodeJS.ErrnoException)}`);
  }
  return format === 'csv' ? csvRows(text) : { rows: ndjsonRows(text) };
}

function whyUnreadable(error: NodeJS.ErrnoException): string {
  if (error.code === 'ENOENT') return 'there is no such file (check the name, and the folder you run from)';
  if (error.code === 'EISDIR') return 'it is a folder: give the file in it';
  if (error.code === 'EACCES') return 'permission denied';
  return error.message;
}

function formatOf(path: string): 'csv' | 'ndjson' {
  const extension = extname(path).toLowerCase();
  if (extension === '.csv') return 'csv';
  if (extension === '.ndjson' || extension === '.jsonl') return 'ndjson';
  throw new UsageError(`cannot tell the format of ${path}: name it .csv, .ndjson or .jsonl`);
}

/** CSV with a header row naming the columns, separated by commas, semicolons or tabs (as the header is). */
export function csvRows(text: string): InputFile {
  const records = parseCsv(text, separatorOf(text));
  const header = records.next();
  if (header.done) throw new UsageError('the CSV file is empty: it needs a header row');
  if ('error' in header.value) throw new UsageError(`the CSV header is malformed: ${header.value.error}`);
  const columns = header.value.fields.map((name) => name.trim().toLowerCase());
  const rows: InputRow[] = [];
  for (const record of records) {
    if ('error' in record) rows.push({ line: record.line, problem: `malformed CSV: ${record.error}` });
    else if (record.fields.length !== columns.length) {
      rows.push({
        line: record.line,
        problem: `malformed CSV: ${record.fields.length} fields where the header has ${columns.length}`,
      });
    } else
      rows.push({ line: record.line, values: valuesOf(columns.map((name, i) => [name, record.fields[i]])) });
  }
  return { rows, columns };
}

/** One JSON object per line; blank lines are skipped. */
export function ndjsonRows(text: string): InputRow[] {
  const rows: InputRow[] = [];
  const lines = text.replace(/^\uFEFF/, '').split('\n');
  lines.forEach((content, index) => {
    if (content.trim() === '') return;
    rows.push({ line: index + 1, ...ndjsonRow(content) });
  });
  return rows;
}

function ndjsonRow(content: string): { values: Record<string, string> } | { problem: string } {
  let json: unknown;
  try {
    json = JSON.parse(content);
  } catch {
    return { problem: 'malformed JSON' };
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    return { problem: 'not a JSON object' };
  }
  const entries = Object.entries(json);
  // Numbers are accepted as text (ids often are numbers); null is "not given", like an empty cell.
  const wrong = entries.find(([, value]) => !['string', 'number'].includes(typeof value) && value !== null);
  if (wrong) return { problem: `${wrong[0]}: must be a string` };
  return { values: valuesOf(entries.map(([name, value]) => [name.toLowerCase(), value ?? undefined])) };
}

function valuesOf(entries: [string, unknown][]): Record<string, string> {
  const values: Record<string, string> = {};
  for (const [name, value] of entries) {
    const text = value === undefined ? '' : String(value).trim();
    if (text !== '') values[name] = text;
  }
  return values;
}
