import { counted } from '../io.js';
import { printable } from '../terminal.js';
import type { ClassifiedLetter } from './classify.js';

export interface ReportFacts {
  queue: string;
  /** Messages read, before --reason. */
  read: number;
  /** ApproximateNumberOfMessages + NotVisible, before reading. */
  onQueue: number;
  limit: number;
  reason?: string | undefined;
}

export interface ReasonSummary {
  reason: string;
  count: number;
  newest: string | undefined;
}

/** Count and newest time per reason; most frequent first. */
export function summarizeByReason(letters: ClassifiedLetter[]): ReasonSummary[] {
  const byReason = new Map<string, ReasonSummary>();
  for (const letter of letters) {
    const summary = byReason.get(letter.reason) ?? { reason: letter.reason, count: 0, newest: undefined };
    summary.count++;
    if (letter.time && (!summary.newest || Date.parse(letter.time) > Date.parse(summary.newest)))
      summary.newest = letter.time;
    byReason.set(letter.reason, summary);
  }
  return [...byReason.values()].sort((a, b) => b.count - a.count || a.reason.localeCompare(b.reason));
}

/** The text report: a heading, the summary by reason, then one line per letter (already sorted). */
export function formatReport(letters: ClassifiedLetter[], facts: ReportFacts): string {
  const filter = facts.reason === undefined ? '' : ` with reason ${facts.reason}`;
  const heading = `Dead-letter queue ${facts.queue}: ${counted(facts.read, 'message')} read (about ${facts.onQueue} on the queue), all left in place`;
  const lines = [facts.reason === undefined ? `${heading}.` : `${heading}; ${letters.length}${filter}.`];
  if (facts.read >= facts.limit && facts.onQueue > facts.read) {
    lines.push(`Stopped at --limit ${facts.limit}.`);
  } else if (facts.onQueue > facts.read) {
    lines.push(
      'Not all were read: unless messages are removed, a FIFO queue shows only the first messages of each ' +
        "message group (a customer, or a tenant's intake), and none that another reader holds.",
    );
  }
  if (letters.length === 0) {
    lines.push(facts.read === 0 ? 'Nothing is parked.' : `No letters${filter}.`);
    return `${lines.join('\n')}\n`;
  }
  const summary = summarizeByReason(letters);
  const width = Math.max(...summary.map((s) => s.reason.length));
  lines.push(
    '',
    ...summary.map((s) =>
      printable(
        `  ${s.reason.padEnd(width)}  ${String(s.count).padStart(6)}  newest ${s.newest ?? '(unknown)'}`,
      ),
    ),
    '',
    'Newest first:',
    ...letters.map((letter) => formatLetter(letter, width)),
  );
  return `${lines.join('\n')}\n`;
}

const DETAIL_LENGTH = 120;

/** `<time>  <reason>  <tenant>  customer <externalId>  [<sourceEventId>]  <detail, shortened>` */
export function formatLetter(letter: ClassifiedLetter, reasonWidth = 0): string {
  const firstLine = letter.detail.split('\n')[0] ?? '';
  const detail = firstLine.length > DETAIL_LENGTH ? `${firstLine.slice(0, DETAIL_LENGTH - 1)}…` : firstLine;
  // Every field is outside data (an ERP's ids, a letter's detail): no control character reaches the terminal.
  return printable(
    [
      (letter.time ?? '(unknown time)').padEnd(24),
      letter.reason.padEnd(reasonWidth),
      letter.tenant ?? '(no tenant)',
      letter.externalId === undefined ? 'no customer' : `customer ${letter.externalId}`,
      `[${letter.sourceEventId ?? `message ${letter.messageId ?? '?'}`}]`,
      detail,
    ].join('  '),
  );
}

/** `…/identity-changes-dlq.fifo` → `identity-changes-dlq.fifo`. */
export const queueNameOf = (queueUrl: string) => queueUrl.replace(/\/+$/, '').split('/').at(-1) ?? queueUrl;
