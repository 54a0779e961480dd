import type { BatchCommand, BatchRow } from '../batch.js';
import { type InputFile, type InputRow, readInputFile } from '../input.js';
import { UsageError } from '../io.js';
import { type RowResult, rowKeyOf } from '../results.js';
import type { RowContext } from '../rows.js';

/** The first stage: the file's rows, refused at once when its CSV header lacks a column the command needs. */
export async function readRows(file: string, requiredColumns: string[][]): Promise<InputFile> {
  const input = await readInputFile(file);
  requireColumns(input.columns, requiredColumns);
  return input;
}

export function requireColumns(columns: string[] | undefined, required: string[][]) {
  if (!columns) return;
  const missing = required.filter((names) => !names.some((name) => columns.includes(name)));
  if (missing.length > 0) {
    const wanted = missing.map((names) => names.join(' or ')).join(', ');
    const separators =
      columns.length === 1
        ? '; columns are separated by commas, semicolons or tabs, and this header has none'
        : '';
    throw new UsageError(
      `the CSV header has no ${wanted} column (it has: ${columns.join(', ')}${separators})`,
    );
  }
}

/** The second stage: each row as the command's task, or its result when the row is invalid. */
export function validateRows<Task extends BatchRow>(
  rows: readonly InputRow[],
  taskOf: BatchCommand<Task, unknown>['taskOf'],
  context: RowContext,
): Map<number, Task | RowResult> {
  return new Map(rows.map((row) => [row.line, taskOf(row, context)]));
}

export const isResult = <Task>(task: Task | RowResult): task is RowResult =>
  typeof task === 'object' && task !== null && 'outcome' in task;

/** What a row's key is made of: its values, or what was wrong with it. */
const contentOf = (row: InputRow) => ('values' in row ? row.values : row.problem);

/** Each row's key (rowKeyOf) under this run: how a rerun tells the row is done. */
export const rowKeysOf = (rows: readonly InputRow[], run: Parameters<typeof rowKeyOf>[0]) =>
  new Map(rows.map((row) => [row.line, rowKeyOf(run, contentOf(row))]));
