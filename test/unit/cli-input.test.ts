import { mkdtemp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseCsv, separatorOf } from '../../cli/csv.js';
import { csvRows, ndjsonRows, readInputFile } from '../../cli/input.js';
import { UsageError } from '../../cli/io.js';
import { useTempDir } from '../support/temp-dir.js';

/** Removed after this file's tests, with every folder made in it. */
const tempDir = useTempDir('cli-input');

const records = (text: string) => [...parseCsv(text)];

describe('the separator', () => {
  it("is read from the header line: semicolons and tabs (spreadsheets' exports) as well as commas", () => {
    expect(separatorOf('externalId;email;phone\n1;a@example.com;\n')).toBe(';');
    expect(separatorOf('externalId\temail\n1\ta@example.com\n')).toBe('\t');
    expect(separatorOf('"a;b",c\n')).toBe(',');
    expect(separatorOf('externalId\n1\n')).toBe(',');
    expect(csvRows('\uFEFFexternalId;email\n7;"a;b@example.com"\n')).toEqual({
      columns: ['externalid', 'email'],
      rows: [{ line: 2, values: { externalid: '7', email: 'a;b@example.com' } }],
    });
    expect(csvRows('Customer ID\tEmail\n7\ta@example.com\n').rows).toEqual([
      { line: 2, values: { 'customer id': '7', email: 'a@example.com' } },
    ]);
  });
});

describe('parseCsv', () => {
  it('splits plain records and numbers them by line', () => {
    expect(records('a,b\n1,2\n')).toEqual([
      { line: 1, fields: ['a', 'b'] },
      { line: 2, fields: ['1', '2'] },
    ]);
  });

  it('reads quoted fields with commas, doubled quotes and line breaks, keeping later line numbers right', () => {
    const text = 'id,note\n1,"Smith, Jane"\n2,"said ""hi"""\n3,"two\nlines"\n4,after\n';
    expect(records(text)).toEqual([
      { line: 1, fields: ['id', 'note'] },
      { line: 2, fields: ['1', 'Smith, Jane'] },
      { line: 3, fields: ['2', 'said "hi"'] },
      { line: 4, fields: ['3', 'two\nlines'] },
      { line: 6, fields: ['4', 'after'] },
    ]);
  });

  it('takes CRLF line ends, a byte order mark, empty fields and a last line without a line end', () => {
    expect(records('\uFEFFa,b,c\r\n1,,\r\n"",x,"y"')).toEqual([
      { line: 1, fields: ['a', 'b', 'c'] },
      { line: 2, fields: ['1', '', ''] },
      { line: 3, fields: ['', 'x', 'y'] },
    ]);
  });

  it('skips blank lines but still counts them', () => {
    expect(records('a\n\n   \n\r\nb\n\n')).toEqual([
      { line: 1, fields: ['a'] },
      { line: 5, fields: ['b'] },
    ]);
  });

  it('reports a malformed record with its line and carries on with the next line', () => {
    expect(records('a,b\n"x"y,1\nok,2\nbad"quote,3\nok,4\n"open,5\nnever closed\n')).toEqual([
      { line: 1, fields: ['a', 'b'] },
      { line: 2, error: 'text after the closing quote of a field' },
      { line: 3, fields: ['ok', '2'] },
      { line: 4, error: 'a quote inside a field that does not start with one' },
      { line: 5, fields: ['ok', '4'] },
      { line: 6, error: 'a quoted field is not closed' },
    ]);
  });
});

describe('csvRows', () => {
  it('names values by the header (trimmed, lower-cased) and leaves empty cells out', () => {
    const { rows, columns } = csvRows('externalId, Email ,phone\n 42 ,a@example.com,\n');
    expect(columns).toEqual(['externalid', 'email', 'phone']);
    expect(rows).toEqual([{ line: 2, values: { externalid: '42', email: 'a@example.com' } }]);
  });

  it('reports rows with more or fewer fields than the header, and malformed ones', () => {
    const { rows } = csvRows('a,b\n1\n1,2,3\n"x"y,2\n');
    expect(rows).toEqual([
      { line: 2, problem: 'malformed CSV: 1 fields where the header has 2' },
      { line: 3, problem: 'malformed CSV: 3 fields where the header has 2' },
      { line: 4, problem: 'malformed CSV: text after the closing quote of a field' },
    ]);
  });

  it('refuses a file without a usable header', () => {
    expect(() => csvRows('')).toThrow(UsageError);
    expect(() => csvRows('\n\n')).toThrow(/empty/);
    expect(() => csvRows('"a,b\n')).toThrow(/header is malformed/);
  });
});

describe('ndjsonRows', () => {
  it('reads one object per line, skipping blank lines, numbers as text and null as not given', () => {
    const text =
      '\uFEFF{"externalId":"1","email":"a@example.com"}\r\n\n{"externalId":2,"phone":null,"email":" "}\n';
    expect(ndjsonRows(text)).toEqual([
      { line: 1, values: { externalid: '1', email: 'a@example.com' } },
      { line: 3, values: { externalid: '2' } },
    ]);
  });

  it('reports lines that are not JSON objects of strings', () => {
    expect(ndjsonRows('{"a":\n[1]\n"text"\n{"email":["a"]}\n')).toEqual([
      { line: 1, problem: 'malformed JSON' },
      { line: 2, problem: 'not a JSON object' },
      { line: 3, problem: 'not a JSON object' },
      { line: 4, problem: 'email: must be a string' },
    ]);
  });
});

describe('readInputFile', () => {
  it('tells the format by the extension', async () => {
    const dir = await mkdtemp(join(tempDir(), 'cli-input-'));
    await writeFile(join(dir, 'rows.JSONL'), '{"externalId":"1"}\n');
    await writeFile(join(dir, 'rows.csv'), 'externalId\n1\n');
    expect(await readInputFile(join(dir, 'rows.JSONL'))).toEqual({
      rows: [{ line: 1, values: { externalid: '1' } }],
    });
    expect((await readInputFile(join(dir, 'rows.csv'))).columns).toEqual(['externalid']);
    await expect(readInputFile(join(dir, 'rows.txt'))).rejects.toThrow(/name it .csv, .ndjson or .jsonl/);
    await expect(readInputFile(join(dir, 'missing.csv'))).rejects.toThrow(UsageError);
  });
});
