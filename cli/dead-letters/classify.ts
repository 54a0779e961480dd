import type { PeekedMessage } from '../../lib/adapters/sqs-peek.js';
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
import { counted } from '../io.js';

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
