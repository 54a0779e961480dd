import { appendFile, truncate, writeFile } from 'node:fs/promises';
import type { ScannedProfile } from '../lib/duplicates/match.js';
import { UsageError } from './io.js';
import { completeLines, readIfThere } from './ndjson.js';

/**
 * The checkpoint of a duplicates scan: an append-only NDJSON file. Its first line says what is
 * read (the tenant, and the whole account or a customer export's lookups); then one line per page
 * read, appended once the page is in: its number, its profiles and the cursor of the next page
 * (null after the last). A run that stops (Ctrl-C, a crash, --max-pages) leaves whole lines, at
 * most a torn last one, which is dropped; the next run goes on from the last page's cursor.
 */

export interface CheckpointHeader {
  checkpoint: 'identity-sync duplicates';
  tenant: string;
  /** `account` (every profile), or `customers:<hash of the lookups>`. */
  reads: string;
  /**
   * The Klaviyo account (base URL, key) and tenant read (the CLI's targetIdOf): the pages, and the
   * merges made from them, belong to it. Absent in checkpoints of earlier versions.
   */
  target?: string;
}

export interface CheckpointPage {
  page: number;
  profiles: ScannedProfile[];
  /** The next page's cursor; null when this was the last page. */
  next: string | null;
}

/** What the pages read so far add up to. */
export interface ScanSoFar {
  /** Each profile once by id (the latest read of it), in the order first read. */
  profiles: Map<string, ScannedProfile>;
  pages: number;
  /** Where to go on from; undefined before the first page and once done. */
  next?: string;
  done: boolean;
}

export interface Checkpoint extends ScanSoFar {
  /** Appends a page's line and adds it to what is known. */
  append(page: Omit<CheckpointPage, 'page'>): Promise<void>;
}

/** The header and pages of a checkpoint's text; a torn last line (no line break yet) is not read. */
export function parseCheckpoint(text: string): { header?: CheckpointHeader; pages: CheckpointPage[] } {
  const [header, ...rest] = completeLines(text) as [
    CheckpointHeader | undefined,
    ...(CheckpointPage | undefined)[],
  ];
  if (header?.checkpoint !== 'identity-sync duplicates') return { pages: [] };
  const pages: CheckpointPage[] = [];
  for (const page of rest) {
    // A line that is no page would mean another writer: stop there rather than guess.
    if (!page || page.page !== pages.length + 1 || !Array.isArray(page.profiles)) break;
    pages.push(page);
  }
  return { header, pages };
}

/** Where the pages leave the scan. */
export function scanSoFar(pages: readonly CheckpointPage[]): ScanSoFar {
  const scan: ScanSoFar = { profiles: new Map(), pages: 0, done: false };
  for (const page of pages) addPage(scan, page);
  return scan;
}

function addPage(scan: ScanSoFar, page: CheckpointPage) {
  for (const profile of page.profiles) scan.profiles.set(profile.id, profile);
  scan.pages = page.page;
  scan.next = page.next ?? undefined;
  scan.done = page.next === null;
}

/**
 * Opens the checkpoint at `path` for `header`: goes on from what it holds, or starts it (always
 * with `restart`). A file of another tenant or other lookups, or no checkpoint at all, is left
 * alone: the run stops with what to do.
 */
export async function openCheckpoint(
  path: string,
  header: Omit<CheckpointHeader, 'checkpoint'>,
  { restart = false } = {},
): Promise<Checkpoint> {
  const wanted: CheckpointHeader = { checkpoint: 'identity-sync duplicates', ...header };
  const text = restart ? '' : await readIfThere(path, `the checkpoint ${path}`);
  const found = parseCheckpoint(text);
  if (text !== '' && !found.header)
    throw new UsageError(`${path} is not a duplicates checkpoint: name another --checkpoint`);
  if (found.header && (found.header.tenant !== wanted.tenant || found.header.reads !== wanted.reads)) {
    throw new UsageError(
      `the checkpoint ${path} is of another scan (tenant ${found.header.tenant}, ${found.header.reads}): pass --restart to start over, or another --checkpoint`,
    );
  }
  // Its profile ids are another account's: merging them here would merge the wrong profiles.
  if (found.header && found.header.target !== wanted.target) {
    throw new UsageError(
      `the checkpoint ${path} was read from another Klaviyo account or base URL (or by a version that did not record which): pass --restart to read afresh, or another --checkpoint`,
    );
  }
  if (found.header) {
    // Only the header and whole pages are kept, so the next page's line starts on a line of its own.
    const kept = text
      .split('\n')
      .slice(0, found.pages.length + 1)
      .join('\n');
    await truncate(path, Buffer.byteLength(`${kept}\n`));
  } else await writeFile(path, lineOf(wanted)).catch(cannotWrite(path));
  const checkpoint: Checkpoint = {
    ...scanSoFar(found.pages),
    async append(page) {
      const line: CheckpointPage = {
        page: checkpoint.pages + 1,
        ...page,
        profiles: page.profiles.map(atRest),
      };
      await appendFile(path, lineOf(line));
      addPage(checkpoint, line);
    },
  };
  return checkpoint;
}

const lineOf = (value: unknown) => `${JSON.stringify(value)}\n`;

/**
 * A profile as the checkpoint keeps it: what the rules pair on (emails, names, external id); the
 * phone, which no rule reads, is left out, so the file holds no more personal data than a resume needs.
 */
const atRest = (profile: ScannedProfile): ScannedProfile => ({ ...profile, phone_number: null });

const cannotWrite = (path: string) => (error: Error) => {
  throw new UsageError(`cannot write the checkpoint ${path}: ${error.message}`);
};
