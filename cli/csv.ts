export type CsvRecord = { line: number; fields: string[] } | { line: number; error: string };

/** What may separate fields: commas, or what spreadsheets write in locales with a decimal comma. */
export type CsvSeparator = ',' | ';' | '\t';
const SEPARATORS: readonly CsvSeparator[] = [',', ';', '\t'];

/**
 * The separator a file uses, read from its header line (outside quotes): the one that occurs most,
 * comma on a tie or when there is none (a single column).
 */
export function separatorOf(text: string): CsvSeparator {
  const firstLine = text.replace(/^\uFEFF/, '').split(/\r?\n/, 1)[0] ?? '';
  const unquoted = firstLine.replace(/"[^"]*"/g, '');
  const count = (separator: string) => unquoted.split(separator).length - 1;
  return SEPARATORS.reduce((best, separator) => (count(separator) > count(best) ? separator : best));
}

/**
 * Splits CSV text (RFC 4180) into records: fields separated by `separator` (commas by default); a
 * quoted field may hold separators, line breaks and doubled quotes; records end at CRLF or LF. `line` is the line a record
 * starts on (1-based), the number an editor shows. A byte order mark and blank lines are skipped.
 * A malformed record is reported, and parsing resumes on the line after it.
 */
export function* parseCsv(text: string, separator: CsvSeparator = ','): Generator<CsvRecord> {
  const reader = { text, separator, at: text.charCodeAt(0) === 0xfeff ? 1 : 0, line: 1 };
  while (reader.at < text.length) {
    const line = reader.line;
    const record = readRecord(reader);
    if ('error' in record) {
      skipRestOfLine(reader);
      yield { line, error: record.error };
    } else if (!isBlank(record.fields)) {
      yield { line, fields: record.fields };
    }
  }
}

interface Reader {
  text: string;
  separator: CsvSeparator;
  /** Index of the next character to read. */
  at: number;
  /** Line of that character. */
  line: number;
}

function readRecord(reader: Reader): { fields: string[] } | { error: string } {
  const fields: string[] = [];
  for (;;) {
    const field = reader.text[reader.at] === '"' ? readQuoted(reader) : readUnquoted(reader);
    if (typeof field !== 'string') return field;
    fields.push(field);
    if (reader.text[reader.at] !== reader.separator) break;
    reader.at++;
  }
  skipLineBreak(reader);
  return { fields };
}

function readQuoted(reader: Reader): string | { error: string } {
  const { text } = reader;
  let value = '';
  reader.at++; // the opening quote
  for (;;) {
    if (reader.at >= text.length) return { error: 'a quoted field is not closed' };
    const char = text[reader.at] as string;
    if (char === '"' && text[reader.at + 1] === '"') {
      value += '"';
      reader.at += 2;
    } else if (char === '"') {
      reader.at++;
      return atFieldEnd(reader) ? value : { error: 'text after the closing quote of a field' };
    } else {
      if (char === '\n') reader.line++;
      value += char;
      reader.at++;
    }
  }
}

function readUnquoted(reader: Reader): string | { error: string } {
  const start = reader.at;
  while (!atFieldEnd(reader)) {
    if (reader.text[reader.at] === '"')
      return { error: 'a quote inside a field that does not start with one' };
    reader.at++;
  }
  return reader.text.slice(start, reader.at);
}

function atFieldEnd({ text, at, separator }: Reader): boolean {
  const char = text[at];
  return (
    char === undefined || char === separator || char === '\n' || (char === '\r' && text[at + 1] === '\n')
  );
}

function skipLineBreak(reader: Reader) {
  if (reader.text[reader.at] === '\r') reader.at++;
  if (reader.text[reader.at] === '\n') {
    reader.at++;
    reader.line++;
  }
}

function skipRestOfLine(reader: Reader) {
  const next = reader.text.indexOf('\n', reader.at);
  reader.at = next === -1 ? reader.text.length : next;
  skipLineBreak(reader);
}

const isBlank = (fields: string[]) => fields.length === 1 && fields[0]?.trim() === '';
