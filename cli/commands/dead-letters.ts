import { SQSClient } from '@aws-sdk/client-sqs';
import { type PeekedMessage, peekQueue } from '../../lib/adapters/sqs-peek.js';
import {
  customerOf,
  type IdentityChange,
  isComplianceRequest,
  isCustomerMerge,
  kindOf,
  type QueuedChange,
} from '../../lib/identity-change.js';
import { maskIdentifiers, maskIdentifiersInText } from '../../lib/observability/mask.js';
import { Reason } from '../../lib/reasons.js';
import { commandLine, queueUrlOf } from '../command-line.js';
import { counted, EXIT_ATTENTION, EXIT_OK, positiveNumber } from '../io.js';
import { cliSettings } from '../settings.js';
import { printable, printableJson } from '../terminal.js';

const USAGE = `Usage: identity-sync dead-letters [--queue-url URL] [--limit N] [--reason R] [--json]

Reports what is parked on the dead-letter queue and why, and leaves every message there: a
summary by reason, then one line per letter, newest first: when, reason, tenant, customer,
[event], detail. Letters parked by intake or the worker carry their reason; a change SQS moved
there after repeated transient failures shows as retries_exhausted; anything else as unreadable.
Emails and phone numbers are masked; raw payloads are not shown.
The messages are received and then at once made visible again, so replay (identity-sync replay,
or the dead-letter queue redrive) still works; each run adds one to their receive count. A FIFO
queue shows only the first messages of each message group, and none that another reader holds
at the time.
  --queue-url URL  the dead-letter queue (default: DEAD_LETTER_QUEUE_URL)
  --limit N        read at most N messages (default: 100)
  --reason R       only the letters with reason R
  --json           the letters as a JSON array
  -h, --help       this help`;

/** `identity-sync dead-letters`: what is parked and why, without removing anything. */
export const deadLetters = commandLine(
  USAGE,
  {
    options: {
      'queue-url': { type: 'string' },
      limit: { type: 'string', default: '100' },
      reason: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  },
  async ({ values }, io) => {
    const queueUrl = queueUrlOf(
      values['queue-url'],
      cliSettings(io.env).DEAD_LETTER_QUEUE_URL,
      'dead-letters reads the dead-letter queue: pass --queue-url or set DEAD_LETTER_QUEUE_URL',
    );
    const limit = positiveNumber('--limit', values.limit, { integer: true });

    // Region, credentials and endpoint (AWS_ENDPOINT_URL_SQS) come from the environment, as everywhere.
    const sqs = new SQSClient({});
    try {
      const { messages, onQueue, problem } = await peekQueue(sqs, queueUrl, limit);
      const letters = newestFirst(messages.map(classifyDeadLetter));
      const shown = values.reason === undefined ? letters : letters.filter((l) => l.reason === values.reason);
      io.stdout.write(
        values.json
          ? `${printableJson(shown)}\n`
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
  },
);

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

export const UNREADABLE = 'unreadable';

/** What a dead-letter queue message is: a parked letter, a redriven plain change, or unreadable. */
export function classifyDeadLetter(message: PeekedMessage): ClassifiedLetter {
  const { messageId, content, receiveCount, sentAt } = message;
  const common = { messageId, ...optional('receiveCount', receiveCount), ...optional('sentAt', sentAt) };
  if (content.kind === 'letter') {
    const { letter } = content;
    // The schema holds it to an ISO time; written the same way for every letter.
    const parkedAt = new Date(letter.parkedAt).toISOString();
    return {
      ...common,
      kind: 'parked',
      reason: masked(letter.reason),
      time: parkedAt,
      ...optional('tenant', letter.tenant ?? letter.change?.tenant),
      source: letter.source,
      sourceEventId: masked(letter.sourceEventId),
      ...optional('externalId', maskedOf(letter.externalId ?? letter.change?.externalId)),
      detail: masked(letter.detail),
      parkedAt,
      ...optional('context', letter.context && (maskDeep(letter.context) as Record<string, unknown>)),
      ...optional('change', letter.change && maskChange(letter.change)),
    };
  }
  if (content.kind === 'queued') return classifyRedriven(content.queued, common);
  const said = message.reasonAttribute
    ? `; its reason attribute says ${masked(message.reasonAttribute)}`
    : '';
  return {
    ...common,
    kind: 'unreadable',
    reason: UNREADABLE,
    time: sentAt,
    detail: `${masked(content.problem)} (${message.bodyLength} characters)${said}`,
  };
}

/** A queued message SQS's redrive moved to the dead-letter queue as it was, with no letter. */
function classifyRedriven(
  queued: QueuedChange,
  common: Pick<ClassifiedLetter, 'messageId' | 'receiveCount' | 'sentAt'>,
): ClassifiedLetter {
  const { receiveCount, sentAt } = common;
  if (isComplianceRequest(queued)) {
    const customer = customerOf(queued);
    return {
      ...common,
      kind: 'redriven',
      reason: Reason.RetriesExhausted,
      time: sentAt,
      tenant: queued.tenant,
      source: queued.source,
      sourceEventId: masked(queued.sourceEventId),
      ...(customer !== undefined && { externalId: masked(customer) }),
      detail: `a queued ${kindOf(queued)} that kept failing transiently, moved here by SQS`,
    };
  }
  if (isCustomerMerge(queued)) {
    const merge = queued;
    return {
      ...common,
      kind: 'redriven',
      reason: Reason.RetriesExhausted,
      time: sentAt,
      tenant: merge.tenant,
      source: merge.source,
      sourceEventId: masked(merge.sourceEventId),
      externalId: masked(merge.deletedExternalId),
      detail: `a queued Shopify merge into customer ${masked(merge.keptExternalId)} that kept failing transiently, moved here by SQS`,
    };
  }
  const change = queued;
  const times = receiveCount === undefined ? '' : `; received ${counted(receiveCount, 'time')}`;
  return {
    ...common,
    kind: 'redriven',
    reason: Reason.RetriesExhausted,
    time: sentAt,
    tenant: change.tenant,
    source: change.source,
    sourceEventId: masked(change.sourceEventId),
    externalId: masked(change.externalId),
    detail: `a queued change that kept failing transiently, moved here by SQS${times}`,
    change: maskChange(change),
  };
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
const maskedOf = (text: string | undefined) => (text === undefined ? undefined : masked(text));
const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);
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
