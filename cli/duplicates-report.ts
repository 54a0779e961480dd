import { rename, writeFile } from 'node:fs/promises';
import type { ScannedProfile } from '../lib/duplicates/match.js';
import { mergeEffect, type ReviewedPair } from '../lib/duplicates/review.js';
import { maskEmail, maskIdentifiersInText, maskPhone } from '../lib/observability/mask.js';
import { UsageError } from './io.js';
import { printable } from './terminal.js';

/**
 * The duplicates report, for the merchant to review before anything is merged: one line per
 * candidate pair, surest first, as CSV (for a spreadsheet) and NDJSON (for programs). It is the
 * merchant's own data, so emails are written as they are (unlike logs and the terminal).
 */

/** A pair as the report has it. */
export interface ReportLine {
  confidence: number;
  rule: string;
  /** `merge` when --apply would merge it, else why not. */
  apply: string;
  why: string;
  /** What a merge does: the destination is the customer's profile. */
  merge: string;
  destination: ScannedProfile;
  source: ScannedProfile;
}

export const reportLineOf = (pair: ReviewedPair): ReportLine => ({
  confidence: pair.confidence,
  rule: pair.rule,
  apply: pair.verdict,
  why: pair.why,
  merge: mergeEffect(pair),
  destination: pair.destination,
  source: pair.source,
});

const CSV_COLUMNS = [
  'confidence',
  'rule',
  'apply',
  'destination_id',
  'destination_external_id',
  'destination_email',
  'destination_name',
  'source_id',
  'source_email',
  'source_name',
  'why',
  'merge',
] as const;

const nameOf = (profile: ScannedProfile) => [profile.first_name, profile.last_name].filter(Boolean).join(' ');

function csvRowOf(line: ReportLine): string[] {
  const { destination, source } = line;
  return [
    String(line.confidence),
    line.rule,
    line.apply,
    destination.id,
    destination.external_id ?? '',
    destination.email ?? '',
    nameOf(destination),
    source.id,
    source.email ?? '',
    nameOf(source),
    line.why,
    line.merge,
  ];
}

/**
 * A value a spreadsheet would run as a formula: starting with =, +, - or @, their full-width forms
 * (＝＋－＠, which spreadsheets in East Asian locales read as the same), or a TAB or CR (some
 * spreadsheets skip them and read the formula after). OWASP's CSV injection list, plus full width.
 */
const FORMULA_START = /^[=+\-@\t\r\uff1d\uff0b\uff0d\uff20]/;

/**
 * A CSV field: quoted when it holds a comma, quote or line break. A value that could start a
 * formula (a name is free text) gets a leading apostrophe, which spreadsheets show as text and our
 * CSV readers drop.
 */
export function csvField(value: string): string {
  const safe = FORMULA_START.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

export const reportCsv = (lines: readonly ReportLine[]) =>
  [CSV_COLUMNS, ...lines.map(csvRowOf)].map((row) => `${row.map(csvField).join(',')}\n`).join('');

const reportNdjson = (lines: readonly ReportLine[]) =>
  lines.map((line) => `${JSON.stringify(line)}\n`).join('');

/** Writes both files, each whole or not at all (a temporary file renamed over it). */
export async function writeReport(paths: { csv: string; ndjson: string }, lines: readonly ReportLine[]) {
  for (const [path, text] of [
    [paths.csv, reportCsv(lines)],
    [paths.ndjson, reportNdjson(lines)],
  ] as const) {
    try {
      await writeFile(`${path}.tmp`, text);
      await rename(`${path}.tmp`, path);
    } catch (error) {
      throw new UsageError(`cannot write the report to ${path}: ${(error as Error).message}`);
    }
  }
}

/** Pairs shown on screen; the report has them all. */
export const PAIRS_SHOWN = 10;

/**
 * The surest pairs, one line each, for the screen: confidence, rule, what --apply would do, the
 * customer's profile and the source, emails and phones masked (the report keeps them whole).
 */
export function formatTopPairs(pairs: readonly ReviewedPair[], reportPath: string, shown = PAIRS_SHOWN) {
  if (pairs.length === 0) return '';
  const profile = (scanned: ScannedProfile) =>
    [
      `profile ${printable(scanned.id)}`,
      ...(scanned.external_id ? [`customer ${printable(scanned.external_id)}`] : []),
      ...(scanned.email ? [printable(maskEmail(scanned.email) as string)] : []),
      ...(scanned.phone_number ? [printable(maskPhone(scanned.phone_number) as string)] : []),
    ].join(' ');
  const lines = pairs
    .slice(0, shown)
    .map(
      (pair) =>
        `  ${pair.confidence.toFixed(2)}  ${pair.rule}  ${pair.verdict}  ${profile(pair.destination)} <- ${profile(pair.source)}` +
        `  (${maskIdentifiersInText(printable(pair.why))})`,
    );
  const more = pairs.length - lines.length;
  return [
    `Surest pairs (customer's profile <- the profile that would be merged into it):`,
    ...lines,
    ...(more > 0 ? [`  … and ${more} more in ${reportPath}`] : []),
  ]
    .map((line) => `${line}\n`)
    .join('');
}
