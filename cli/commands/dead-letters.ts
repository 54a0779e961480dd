import { parseArgs } from 'node:util';
import {
  ChangeMessageVisibilityBatchCommand,
  type Message,
  ReceiveMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { approximateMessageCount } from '../../lib/adapters/sqs-queues.js';
import { type IdentityChange, identityChangeSchema } from '../../lib/identity-change.js';
import { maskIdentifiers, maskIdentifiersInText } from '../../lib/observability/mask.js';
import { type CliIo, EXIT_ATTENTION, EXIT_OK, runCommand, UsageError } from '../io.js';

/** How long a read hides the messages if making them visible again fails (or the command dies). */
export const READ_VISIBILITY_SECONDS = 30;

const USAGE = `Usage: identity-sync dead-letters [--queue-url URL] [--limit N] [--reason R] [--json]

Reports what is parked on the dead-letter queue and why, and leaves every message there: a
summary by reason, then one line per letter, newest first: when, reason, tenant, customer,
[event], detail. Letters parked by intake or the worker carry their reason; a change SQS moved
there after repeated transient failures shows as retries_exhausted; anything else as unreadable.
Emails and phone numbers are masked; raw payloads are not shown.
The messages are received and then at once made visible again, so replay (dead-letter queue
redrive) still works; each run adds one to their receive count. A FIFO queue shows only the
first messages of each message group, and none that another reader holds at the time.
  --queue-url URL  the dead-letter queue (default: DEAD_LETTER_QUEUE_URL)
  --limit N        read at most N messages (default: 100)
  --reason R       only the letters with reason R
  --json           the letters as a JSON array
  -h, --help       this help`;

/** `identity-sync dead-letters`: what is parked and why, without removing anything. */
export async function deadLetters(args: string[], io: CliIo): Promise<number> {
  return runCommand(io, USAGE, async () => {
    const { values } = parseArgs({
      args,
      options: {
        'queue-url': { type: 'string' },
        limit: { type: 'string', default: '100' },
        reason: { type: 'string' },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
    if (values.help) {
      io.stdout.write(`${USAGE}\n`);
      return EXIT_OK;
    }
    const queueUrl = values['queue-url'] || io.env.DEAD_LETTER_QUEUE_URL;
    if (!queueUrl)
      throw new UsageError(
        'dead-letters reads the dead-letter queue: pass --queue-url or set DEAD_LETTER_QUEUE_URL',
      );
    const limit = Number(values.limit);
    if (!Number.isInteger(limit) || limit < 1)
      throw new UsageError(`--limit must be a positive integer, got '${values.limit}'`);

    // Region, credentials and endpoint (AWS_ENDPOINT_URL_SQS) come from the environment, as everywhere.
    const sqs = new SQSClient({});
    try {
      const onQueue = await approximateCount(sqs, queueUrl);
      const { messages, problem } = await peekQueue(sqs, queueUrl, limit);
      const letters = newestFirst(messages.map(classifyDeadLetter));
      const shown = values.reason === undefined ? letters : letters.filter((l) => l.reason === values.reason);
      io.stdout.write(
        values.json
          ? `${JSON.stringify(shown, null, 2)}\n`
          : formatReport(shown, {
              queue: queueNameOf(queueUrl),
              read: letters.length,
              onQueue,
              limit,
              reason: values.reason,
            }),
      );
      if (problem) {
        io.stderr.write(`identity-sync: ${problem}\n`);
        return EXIT_ATTENTION;
      }
      return EXIT_OK;
    } finally {
      sqs.destroy();
    }
  });
}

// --- Reading without consuming -------------------------------------------------------------

async function approximateCount(sqs: SQSClient, queueUrl: string): Promise<number> {
  try {
    return await approximateMessageCount(sqs, queueUrl);
  } catch (error) {
    throw new Error(`cannot read the queue ${queueUrl}: ${(error as Error).message}`, { cause: error });
  }
}

/**
 * Receives up to `limit` messages, then makes every one visible again, also when a receive
 * failed: on a FIFO queue a received message locks its group (no replay, no redrive, no other
 * reader) until it is visible again. `problem` says what could not be made visible again; those
 * messages come back on their own after READ_VISIBILITY_SECONDS.
 */
export async function peekQueue(
  sqs: SQSClient,
  queueUrl: string,
  limit: number,
): Promise<{ messages: Message[]; problem: string | undefined }> {
  const messages = new Map<string, Message>();
  // Every receipt handle, also of a message received twice (its visibility ran out meanwhile).
  const handles: string[] = [];
  let failure: unknown;
  try {
    while (messages.size < limit) {
      const { Messages = [] } = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: queueUrl,
          MaxNumberOfMessages: Math.min(10, limit - messages.size),
          MessageAttributeNames: ['All'],
          MessageSystemAttributeNames: ['All'],
          VisibilityTimeout: READ_VISIBILITY_SECONDS,
          // Long polling asks every SQS server, so an answer with nothing means nothing more to read.
          WaitTimeSeconds: 1,
        }),
      );
      const before = messages.size;
      for (const message of Messages) {
        if (message.ReceiptHandle) handles.push(message.ReceiptHandle);
        messages.set(message.MessageId ?? message.ReceiptHandle ?? String(handles.length), message);
      }
      if (messages.size === before) break;
    }
  } catch (error) {
    failure = error;
  }
  // The `finally` of the reads: runs whatever happened above, and never throws itself.
  const problem = await makeVisibleAgain(sqs, queueUrl, handles);
  if (failure !== undefined) {
    const also = problem ? `; also, ${problem}` : '';
    throw new Error(`cannot read the queue ${queueUrl}: ${(failure as Error).message}${also}`, {
      cause: failure,
    });
  }
  return { messages: [...messages.values()], problem };
}

/** ChangeMessageVisibilityBatch to 0, ten at a time; what failed, for people, or undefined. */
async function makeVisibleAgain(
  sqs: SQSClient,
  queueUrl: string,
  handles: string[],
): Promise<string | undefined> {
  let failed = 0;
  let firstError: string | undefined;
  for (let start = 0; start < handles.length; start += 10) {
    const batch = handles.slice(start, start + 10);
    try {
      const { Failed = [] } = await sqs.send(
        new ChangeMessageVisibilityBatchCommand({
          QueueUrl: queueUrl,
          Entries: batch.map((ReceiptHandle, i) => ({ Id: String(i), ReceiptHandle, VisibilityTimeout: 0 })),
        }),
      );
      failed += Failed.length;
      firstError ??= Failed[0] && `${Failed[0].Code}: ${Failed[0].Message}`;
    } catch (error) {
      failed += batch.length;
      firstError ??= (error as Error).message;
    }
  }
  if (failed === 0) return undefined;
  return (
    `${failed} of ${handles.length} messages read could not be made visible again (${firstError}); ` +
    `they stay hidden, and their message groups held, for up to ${READ_VISIBILITY_SECONDS} s`
  );
}

// --- Classifying (pure) ---------------------------------------------------------------------

/** One message of the dead-letter queue, as an operator needs it; identifiers masked. */
export interface ClassifiedLetter {
  messageId: string | undefined;
  /** parked: a letter with its reason; redriven: a queued change SQS moved here; unreadable: neither. */
  kind: 'parked' | 'redriven' | 'unreadable';
  /** The parked letter's reason, `retries_exhausted` (redriven) or `unreadable`. */
  reason: string;
  /** When it was parked, or else when SQS says it was sent. */
  time: string | undefined;
  tenant?: string;
  source?: string;
  sourceEventId?: string;
  externalId?: string;
  detail: string;
  parkedAt?: string;
  /** The letter's context, e.g. the profile ids involved or Klaviyo's code. */
  context?: Record<string, unknown>;
  /** The queued change, when there is one. */
  change?: IdentityChange;
  /** SQS's ApproximateReceiveCount: the worker's deliveries and every read, this command's included. */
  receiveCount?: number;
  /** SQS's SentTimestamp. */
  sentAt?: string;
}

export const RETRIES_EXHAUSTED = 'retries_exhausted';
export const UNREADABLE = 'unreadable';

/** What a dead-letter queue message is: a parked letter, a redriven plain change, or unreadable. */
export function classifyDeadLetter(message: Message): ClassifiedLetter {
  const receiveCount = Number(message.Attributes?.ApproximateReceiveCount);
  const common = {
    messageId: message.MessageId,
    ...(Number.isFinite(receiveCount) && { receiveCount }),
    ...optional('sentAt', isoOf(Number(message.Attributes?.SentTimestamp))),
  };
  const body = message.Body ?? '';
  const unreadable = (problem: string): ClassifiedLetter => {
    const attribute = message.MessageAttributes?.reason?.StringValue;
    const said = attribute ? `; its reason attribute says ${masked(attribute)}` : '';
    return {
      ...common,
      kind: 'unreadable',
      reason: UNREADABLE,
      time: common.sentAt,
      detail: `${problem} (${body.length} characters)${said}`,
    };
  };

  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return unreadable('the body is not JSON');
  }
  if (isRecord(json) && typeof json.reason === 'string' && json.reason) {
    const parsed = identityChangeSchema.safeParse(json.change);
    const change = parsed.success ? parsed.data : undefined;
    const rawChange = isRecord(json.change) ? json.change : {};
    const parkedAt = isoOf(Date.parse(String(json.parkedAt)));
    return {
      ...common,
      kind: 'parked',
      reason: masked(json.reason),
      time: parkedAt ?? common.sentAt,
      ...optional('tenant', stringOf(json.tenant) ?? change?.tenant),
      ...optional('source', stringOf(json.source)),
      ...optional('sourceEventId', maskedOf(json.sourceEventId)),
      ...optional('externalId', maskedOf(change?.externalId ?? rawChange.externalId)),
      detail: maskedOf(json.detail) ?? '',
      ...optional('parkedAt', parkedAt),
      ...optional(
        'context',
        isRecord(json.context) ? (maskDeep(json.context) as Record<string, unknown>) : undefined,
      ),
      ...optional('change', change && maskChange(change)),
    };
  }
  const parsed = identityChangeSchema.safeParse(json);
  if (parsed.success) {
    const change = parsed.data;
    const count = common.receiveCount;
    const times = count === undefined ? '' : `; received ${count} ${count === 1 ? 'time' : 'times'}`;
    return {
      ...common,
      kind: 'redriven',
      reason: RETRIES_EXHAUSTED,
      time: common.sentAt,
      tenant: change.tenant,
      source: change.source,
      sourceEventId: masked(change.sourceEventId),
      externalId: masked(change.externalId),
      detail: `a queued change that kept failing transiently, moved here by SQS${times}`,
      change: maskChange(change),
    };
  }
  return unreadable(
    isRecord(json)
      ? 'JSON, but neither a parked letter (no reason) nor an identity change'
      : 'JSON, but not an object',
  );
}

/** Newest first; letters without a time last, in the order read. */
export function newestFirst(letters: ClassifiedLetter[]): ClassifiedLetter[] {
  const when = (letter: ClassifiedLetter) =>
    letter.time ? Date.parse(letter.time) : Number.NEGATIVE_INFINITY;
  return [...letters].sort((a, b) => when(b) - when(a) || 0);
}

const maskChange = (change: IdentityChange): IdentityChange => {
  const { previous, ...rest } = maskIdentifiers(change);
  return {
    ...rest,
    externalId: masked(change.externalId),
    sourceEventId: masked(change.sourceEventId),
    ...(previous && { previous: maskIdentifiers(previous) as IdentityChange['previous'] }),
  };
};

/** Every string inside, masked: a letter's context is free-form (Klaviyo's errors, ERP field errors). */
function maskDeep(value: unknown): unknown {
  if (typeof value === 'string') return masked(value);
  if (Array.isArray(value)) return value.map(maskDeep);
  if (isRecord(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, maskDeep(v)]));
  return value;
}

const masked = (text: string) => maskIdentifiersInText(text);
const maskedOf = (value: unknown) => {
  const text = stringOf(value);
  return text === undefined ? undefined : masked(text);
};
const stringOf = (value: unknown) => (typeof value === 'string' ? value : undefined);
const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);
const isoOf = (epochMs: number) => (Number.isFinite(epochMs) ? new Date(epochMs).toISOString() : undefined);
/** `{ [key]: value }`, or nothing when value is undefined (so JSON and toEqual see no key). */
const optional = <K extends string, V>(key: K, value: V | undefined) =>
  (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };

// --- Formatting (pure) ----------------------------------------------------------------------

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
  const heading = `Dead-letter queue ${facts.queue}: ${facts.read} ${facts.read === 1 ? 'message' : 'messages'} read (about ${facts.onQueue} on the queue), all left in place`;
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
    ...summary.map(
      (s) => `  ${s.reason.padEnd(width)}  ${String(s.count).padStart(6)}  newest ${s.newest ?? '(unknown)'}`,
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
  return [
    (letter.time ?? '(unknown time)').padEnd(24),
    letter.reason.padEnd(reasonWidth),
    letter.tenant ?? '(no tenant)',
    letter.externalId === undefined ? 'no customer' : `customer ${letter.externalId}`,
    `[${letter.sourceEventId ?? `message ${letter.messageId ?? '?'}`}]`,
    detail,
  ].join('  ');
}

/** `…/identity-changes-dlq.fifo` → `identity-changes-dlq.fifo`. */
export const queueNameOf = (queueUrl: string) => queueUrl.replace(/\/+$/, '').split('/').at(-1) ?? queueUrl;
