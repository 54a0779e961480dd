import { SQSClient } from '@aws-sdk/client-sqs';
import { type MoveReport, moveMessages, type PeekedMessage, peekQueue } from '../../lib/adapters/sqs-peek.js';
import { queuedChangeOfLetter } from '../../lib/dead-letter.js';
import { isReason, REASON_SPELLINGS } from '../../lib/reasons.js';
import { commandLine, queueUrlOf } from '../command-line.js';
import { classifyDeadLetter } from '../dead-letters/classify.js';
import { formatLetter, queueNameOf } from '../dead-letters/format.js';
import { confirm, counted, EXIT_ATTENTION, EXIT_OK, EXIT_USAGE, positiveNumber, UsageError } from '../io.js';
import { cliSettings } from '../settings.js';

const REASON_LIST = REASON_SPELLINGS.join(', ');

const USAGE = `Usage: identity-sync replay --reason R [--since T] [--dry-run] [--yes] [options]

Moves parked changes with reason R from the dead-letter queue back to the changes queue, where
the worker applies them as they were (its staleness guard still skips what newer changes
replaced). Fix the cause first. Each customer's letters move in their order; unusable payloads
(letters that carry no change) are never moved. Counts what it can see and asks before moving.
  --reason R          the letters to move: their reason, as \`identity-sync dead-letters\` shows
                      it (retries_exhausted: changes SQS moved there after failing transiently);
                      one of: ${REASON_LIST}
  --since T           only letters parked at or after T (ISO 8601, e.g. 2026-06-01T00:00:00Z)
  --dry-run           count and list what would move; move nothing
  --yes               move without asking (no terminal needed)
  --queue-url URL     the dead-letter queue (default: DEAD_LETTER_QUEUE_URL)
  --to-queue-url URL  the changes queue (default: IDENTITY_CHANGES_QUEUE_URL)
  --limit N           handle at most N messages (default: 10000)
  -h, --help          this help

Seeing every letter: the queue is FIFO, one message group per customer, and SQS hands out only
the first waiting message of each group. Replay moves a letter and deletes it from the dead-letter
queue at once, which makes the next letter of its customer visible, so all of a customer's
letters with reason R are reached. A letter it does not move (another reason, older than --since)
is left first in its group, and the letters behind it stay out of reach, in order: replay says
how many customers are held so, and what to do. The count before moving (and a dry run) sees the
first letter of each customer only.`;

/** `identity-sync replay --reason R`: moves parked changes back to the changes queue. */
export const replay = commandLine(
  USAGE,
  {
    options: {
      reason: { type: 'string' },
      since: { type: 'string' },
      'dry-run': { type: 'boolean', default: false },
      yes: { type: 'boolean', default: false },
      'queue-url': { type: 'string' },
      'to-queue-url': { type: 'string' },
      limit: { type: 'string', default: '10000' },
    },
  },
  async ({ values }, io) => {
    const reason = values.reason;
    if (!reason)
      throw new UsageError('--reason is required: replay moves the letters of one reason at a time');
    if (!isReason(reason)) {
      // One line, not the whole usage: a misspelt reason would otherwise read as "0 letters".
      io.stderr.write(
        `identity-sync: --reason ${reason} is no reason a letter is parked with; one of: ${REASON_LIST}\n`,
      );
      return EXIT_USAGE;
    }
    const since = values.since === undefined ? undefined : Date.parse(values.since);
    if (since !== undefined && Number.isNaN(since))
      throw new UsageError(`--since must be an ISO 8601 date-time, got '${values.since}'`);
    const limit = positiveNumber('--limit', values.limit, { integer: true });
    const settings = cliSettings(io.env);
    const from = queueUrlOf(
      values['queue-url'],
      settings.DEAD_LETTER_QUEUE_URL,
      'pass --queue-url or set DEAD_LETTER_QUEUE_URL (the dead-letter queue)',
    );
    const to = queueUrlOf(
      values['to-queue-url'],
      settings.IDENTITY_CHANGES_QUEUE_URL,
      'pass --to-queue-url or set IDENTITY_CHANGES_QUEUE_URL (the changes queue)',
    );
    if (!values['dry-run'] && !values.yes && !io.stdin?.isTTY)
      throw new UsageError('replay asks before moving anything: pass --yes when no terminal can answer');

    const wanted = { reason, since };
    const sqs = new SQSClient({});
    try {
      const seen = await peekQueue(sqs, from, limit);
      const matching = seen.messages.filter((message) => matches(message, wanted) === 'move');
      const unusable = seen.messages.filter((message) => matches(message, wanted) === 'unusable');
      io.stdout.write(
        formatCount(queueNameOf(from), wanted, seen.onQueue, seen.messages.length, matching, unusable),
      );
      if (values['dry-run'] || matching.length === 0) return seen.problem ? EXIT_ATTENTION : EXIT_OK;
      if (
        !values.yes &&
        !(await confirm(
          io,
          `Move them, and the letters with reason ${reason} behind them, to ${queueNameOf(to)}? [y/N] `,
        ))
      )
        return EXIT_OK;

      // The worker may park a moved letter again while replay runs (its cause not fixed): such a
      // letter, sent to the queue after replay began, is left for the next replay, not moved round.
      const moving = { ...wanted, sentBefore: Date.now() };
      const moved = await moveMessages(sqs, from, {
        destinationUrl: to,
        limit,
        shouldMove: (message) => matches(message, moving) === 'move',
      });
      io.stdout.write(formatMoved(moved, moving));
      if (moved.problem) {
        io.stderr.write(`identity-sync: ${moved.problem}\n`);
        return EXIT_ATTENTION;
      }
      return EXIT_OK;
    } finally {
      sqs.destroy();
    }
  },
);

interface Wanted {
  reason: string;
  since: number | undefined;
  /** Only letters SQS received before this (epoch ms): the ones there when replay began. */
  sentBefore?: number;
}

/** A letter the worker parked (again) after replay began moving. */
const parkedWhileMoving = (message: PeekedMessage, { sentBefore }: Wanted) =>
  sentBefore !== undefined && message.sentAt !== undefined && Date.parse(message.sentAt) >= sentBefore;

/**
 * What replay does with a message: move it (its reason and time are the ones asked for, and it
 * carries a change to replay), `unusable` (asked for, but only a payload: never replayed), or leave it.
 */
export function matches(message: PeekedMessage, wanted: Wanted): 'move' | 'unusable' | 'leave' {
  const { reason, since } = wanted;
  const letter = classifyDeadLetter(message);
  if (letter.reason !== reason) return 'leave';
  if (since !== undefined && !(letter.time !== undefined && Date.parse(letter.time) >= since)) return 'leave';
  if (parkedWhileMoving(message, wanted)) return 'leave';
  const { content } = message;
  if (content.kind === 'unreadable') return 'unusable';
  if (content.kind === 'letter') return queuedChangeOfLetter(content.letter) ? 'move' : 'unusable';
  return 'move';
}

const describe = ({ reason, since }: Wanted) =>
  `reason ${reason}${since === undefined ? '' : ` parked since ${new Date(since).toISOString()}`}`;

/** Before moving: what the first letters of the customers' groups show. */
export function formatCount(
  queue: string,
  wanted: Wanted,
  onQueue: number,
  read: number,
  matching: PeekedMessage[],
  unusable: PeekedMessage[],
): string {
  const lines = [
    `Dead-letter queue ${queue}: about ${onQueue} messages; ${read} read (the first waiting of each message group),` +
      ` ${matching.length} with ${describe(wanted)} to replay.`,
    ...matching.map((message) => `  ${formatLetter(classifyDeadLetter(message))}`),
  ];
  if (unusable.length > 0) lines.push(unusableNote(unusable.length, wanted));
  if (matching.length > 0 && onQueue > read) {
    lines.push(
      `More may be behind them: a FIFO queue shows only the first letter of each customer, so the letters with ${describe(wanted)} behind these are moved too (and counted) as replay goes.`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/** After moving: how many moved, and which customers' letters stayed out of reach, and why. */
export function formatMoved(report: MoveReport, wanted: Wanted): string {
  const lines = [
    `Moved ${counted(report.moved.length, 'letter')} with ${describe(wanted)} to the changes queue, each customer's in order.`,
  ];
  const unusable = report.left.filter((message) => matches(message, wanted) === 'unusable');
  if (unusable.length > 0) lines.push(unusableNote(unusable.length, wanted));
  const again = report.left.filter((message) => parkedWhileMoving(message, wanted));
  if (again.length > 0)
    lines.push(
      `${counted(again.length, 'letter')} parked again while replay ran (the cause may not be fixed yet): left for the next replay.`,
    );
  const blocking = report.left.filter(
    (message) => matches(message, wanted) === 'leave' && !parkedWhileMoving(message, wanted),
  );
  const groups = new Set(blocking.map((message) => message.groupId ?? message.messageId));
  if (groups.size > 0) {
    lines.push(
      `${groups.size === 1 ? "1 customer's message group begins" : `${groups.size} customers' message groups begin`}` +
        ' with a letter of another reason (or parked before --since): the letters behind it stay where they are,' +
        " in order, unread. To replay those customers, fix and replay that first letter's reason too" +
        ' (identity-sync dead-letters lists them), then run this replay again.',
    );
  }
  const reached = report.moved.length + report.left.length;
  if (report.onQueue > reached)
    lines.push(
      `About ${counted(report.onQueue - reached, 'message')} stayed out of reach behind those letters.`,
    );
  return `${lines.join('\n')}\n`;
}

const unusableNote = (count: number, { reason }: Wanted) =>
  `${counted(count, 'letter')} with reason ${reason} ${count === 1 ? 'carries' : 'carry'} no change to replay (unusable payloads): left on the queue.`;
