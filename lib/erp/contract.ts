import { createHash } from 'node:crypto';
import * as z from 'zod';
import type { CustomerRedact, IdentityChange, QueuedChange } from '../identity-change.js';
import { normalizeEmail } from '../normalize.js';
import type { ChangeResult, FieldError } from './answers.js';
import { emailAddress, readPhone } from './identifiers.js';

export {
  type ChangeResult,
  type ErpReceipt,
  type ErpRefusal,
  erpReceiptSchema,
  erpRefusalSchema,
  type FieldError,
} from './answers.js';
export { EMAIL_ADDRESS, emailProblem, MAX_EMAIL_LENGTH, readPhone } from './identifiers.js';

/**
 * The one JSON contract of `POST /webhooks/erp/{tenant}`: a change, or a batch of changes, of a
 * customer's identifiers. The schemas below (with the answers', answers.ts) are the source of
 * docs/erp-change.schema.json and of the ERP schemas in docs/openapi.json
 * (scripts/generate-contract-docs.ts).
 */
export const MAX_CHANGES_PER_REQUEST = 100;
/** 100 changes take well under 100 KB; anything far larger is not a request of this contract. */
export const MAX_BODY_BYTES = 256 * 1024;
/** How far ahead of our clock `occurredAt` may be: a change from the future would block later ones. */
const MAX_CLOCK_AHEAD_MS = 5 * 60_000;
const MAX_SOURCE_EVENT_ID_LENGTH = 128;

const erpChangeSchema = z
  .strictObject({
    externalId: z
      .string()
      .min(1)
      .max(255)
      .describe('The customer’s id in the system of record; the Klaviyo profile’s external_id.'),
    email: emailAddress.nullable().optional().describe('A value sets it, null clears it, absent leaves it.'),
    phoneNumber: z
      .string()
      .nullable()
      .optional()
      .describe(
        'A value sets it, null clears it, absent leaves it. E.164, or a national number read in the deployment’s default region.',
      ),
    previous: z
      .strictObject({
        email: emailAddress.nullable().optional(),
        phoneNumber: z.string().nullable().optional(),
      })
      .optional()
      .describe(
        'The identifiers before this change, when known (null: there was none). Used to find the profile when none has the externalId yet.',
      ),
    occurredAt: z.iso
      .datetime({ offset: true })
      .describe(
        'When the change happened in the system of record, ISO 8601 with Z or ±hh:mm. Orders the changes of one customer: an older change never overwrites a newer one.',
      ),
    id: z
      .string()
      .min(1)
      .max(128)
      .optional()
      .describe('Your id for this change, echoed in its result and kept with it.'),
  })
  .refine((change) => change.email !== undefined || change.phoneNumber !== undefined, {
    message: 'give email or phoneNumber (null clears it)',
  })
  .meta({
    id: 'ErpChange',
    title: 'ERP identity change',
    // The refinement above, for JSON Schema readers.
    anyOf: [{ required: ['email'] }, { required: ['phoneNumber'] }],
  });

/**
 * A request to erase everything held about a customer (GDPR/CCPA), queued in the customer's
 * order like a Shopify customers/redact: its changes queued before it apply first, none after it.
 */
const erpErasureSchema = z
  .strictObject({
    type: z.literal('erasure').describe('Marks the item as an erasure request, not a change.'),
    externalId: erpChangeSchema.shape.externalId,
    id: z
      .string()
      .min(1)
      .max(128)
      .optional()
      .describe('Your id for this request, echoed in its result and kept in the erasure record.'),
  })
  .meta({ id: 'ErpErasure', title: 'ERP erasure request' });

/** One item of a request: a change, or (with `type: "erasure"`) an erasure request. */
const erpItemSchema = z.union([erpChangeSchema, erpErasureSchema]);
const isErasureItem = (sent: unknown) => isObject(sent) && sent.type === 'erasure';

const erpBatchSchema = z
  .strictObject({ changes: z.array(erpItemSchema).min(1).max(MAX_CHANGES_PER_REQUEST) })
  .meta({ id: 'ErpChangeBatch', title: `Up to ${MAX_CHANGES_PER_REQUEST} ERP identity changes` });

export const erpRequestSchema = z.union([erpChangeSchema, erpErasureSchema, erpBatchSchema]).meta({
  id: 'ErpRequest',
  title: 'Body of POST /webhooks/erp/{tenant}',
  description:
    'One change (or erasure request), or a batch of them in `changes`. Every item gets its own result.',
});

type ErpChange = z.output<typeof erpChangeSchema>;

export interface ErpDelivery {
  tenant: string;
  /** `webhook-id`: identifies the request, and stays the same on redeliveries. */
  webhookId: string;
  receivedAt: Date;
  defaultPhoneRegion: string;
}

/** One change of a request: the identity change to queue, or what is wrong with it. */
export type ReadChange = AcceptedChange | AcceptedErasure | RejectedChange;

export interface AcceptedChange {
  result: Extract<ChangeResult, { status: 'accepted' }>;
  change: IdentityChange;
}

/** An erasure item accepted: queued as the customer's erasure. */
export interface AcceptedErasure {
  result: Extract<ChangeResult, { status: 'accepted' }>;
  erasure: CustomerRedact;
}

/** What an accepted item queues. */
export const queuedOf = (item: AcceptedChange | AcceptedErasure): QueuedChange =>
  'change' in item ? item.change : item.erasure;

export interface RejectedChange {
  result: Extract<ChangeResult, { status: 'rejected' }>;
  sourceEventId: string;
  /** The change as it was sent. */
  sent: unknown;
}

export type ReadRequest = { ok: true; changes: ReadChange[] } | { ok: false; errors: FieldError[] };

/**
 * Reads a request body as a single change or a batch. The body is refused as a whole only when
 * it is neither; within it, each change is accepted or rejected on its own.
 *
 * Deduplication key (`sourceEventId`) of each change: the webhook-id for a single change,
 * `${webhook-id}:${index}` for the change at `index` of a batch. A redelivery carries the same
 * signed bytes under the same webhook-id, so it yields the same keys.
 */
export function readErpRequest(rawBody: string, delivery: ErpDelivery): ReadRequest {
  let body: unknown;
  try {
    body = JSON.parse(rawBody);
  } catch {
    return { ok: false, errors: [{ path: '', message: 'body is not JSON' }] };
  }
  if (isObject(body) && 'changes' in body) {
    const parsed = erpBatchSchema.safeParse(body);
    // Problems inside a change are that change's result; only the envelope's refuse the request.
    const envelopeIssues = (parsed.error?.issues ?? []).filter(
      (issue) => !(issue.path[0] === 'changes' && typeof issue.path[1] === 'number'),
    );
    if (envelopeIssues.length > 0) return { ok: false, errors: envelopeIssues.map(fieldErrorOf) };
    const changes = body.changes as unknown[];
    return {
      ok: true,
      changes: changes.map((sent, index) =>
        readChange(sent, index, boundedEventId(`${delivery.webhookId}:${index}`), delivery),
      ),
    };
  }
  if (isObject(body) && ('externalId' in body || isErasureItem(body))) {
    return { ok: true, changes: [readChange(body, 0, boundedEventId(delivery.webhookId), delivery)] };
  }
  return {
    ok: false,
    errors: [
      { path: '', message: 'expected a change (an object with externalId) or a batch ({"changes": [...]})' },
    ],
  };
}

function readChange(sent: unknown, index: number, sourceEventId: string, delivery: ErpDelivery): ReadChange {
  const identification = {
    index,
    ...(isObject(sent) && typeof sent.id === 'string' && { id: sent.id }),
    ...(isObject(sent) && typeof sent.externalId === 'string' && { externalId: sent.externalId }),
  };
  const read = isErasureItem(sent)
    ? readErasure(sent, sourceEventId, delivery)
    : readIdentityChange(sent, sourceEventId, delivery);
  if ('errors' in read) {
    return { result: { ...identification, status: 'rejected', errors: read.errors }, sourceEventId, sent };
  }
  const result = { ...identification, status: 'accepted' } as const;
  return 'kind' in read ? { result, erasure: read } : { result, change: read };
}

function readIdentityChange(sent: unknown, sourceEventId: string, delivery: ErpDelivery) {
  const parsed = erpChangeSchema.safeParse(sent);
  return parsed.success
    ? toIdentityChange(parsed.data, sourceEventId, delivery)
    : { errors: parsed.error.issues.map(fieldErrorOf) };
}

/** An erasure item, queued as the customer's erasure (the worker's erasure core does the rest). */
function readErasure(
  sent: unknown,
  sourceEventId: string,
  delivery: ErpDelivery,
): CustomerRedact | { errors: FieldError[] } {
  const parsed = erpErasureSchema.safeParse(sent);
  if (!parsed.success) return { errors: parsed.error.issues.map(fieldErrorOf) };
  return {
    kind: 'customerRedact',
    tenant: delivery.tenant,
    source: 'erp',
    externalId: parsed.data.externalId,
    requestedAt: delivery.receivedAt.toISOString(),
    sourceEventId,
    receivedAt: delivery.receivedAt.toISOString(),
  };
}

/** Normalises a schema-valid change; what cannot be normalised is a field error. */
function toIdentityChange(
  sent: ErpChange,
  sourceEventId: string,
  delivery: ErpDelivery,
): IdentityChange | { errors: FieldError[] } {
  const errors: FieldError[] = [];
  const phone = (value: string | null | undefined, path: string) => {
    if (value == null) return value;
    const read = readPhone(value, delivery.defaultPhoneRegion);
    if ('e164' in read) return read.e164;
    errors.push({ path, message: read.problem });
    return undefined;
  };
  const email = (value: string | null | undefined) => (value === null ? null : normalizeEmail(value));

  const occurredAtMs = Date.parse(sent.occurredAt);
  if (occurredAtMs > delivery.receivedAt.getTime() + MAX_CLOCK_AHEAD_MS) {
    errors.push({ path: '/occurredAt', message: 'is more than 5 minutes in the future' });
  }
  const change: IdentityChange = {
    tenant: delivery.tenant,
    source: 'erp',
    externalId: sent.externalId,
    occurredAt: new Date(occurredAtMs).toISOString(),
    sourceEventId,
    receivedAt: delivery.receivedAt.toISOString(),
  };
  if (sent.id !== undefined) change.eventId = sent.id;
  if (sent.email !== undefined) change.email = email(sent.email);
  if (sent.phoneNumber !== undefined) change.phoneNumber = phone(sent.phoneNumber, '/phoneNumber');
  const previousEmail = email(sent.previous?.email);
  const previousPhone = phone(sent.previous?.phoneNumber, '/previous/phoneNumber');
  if (previousEmail || previousPhone) {
    change.previous = {
      ...(previousEmail && { email: previousEmail }),
      ...(previousPhone && { phoneNumber: previousPhone }),
    };
  }
  return errors.length > 0 ? { errors } : change;
}

/** The queue message's key holds 128 characters; a longer one is replaced by its hash. */
function boundedEventId(key: string): string {
  if (key.length <= MAX_SOURCE_EVENT_ID_LENGTH) return key;
  return `sha256:${createHash('sha256').update(key).digest('hex')}`;
}

/** Paths hold only our member names and indices, so they need none of JSON Pointer's escapes. */
function fieldErrorOf(issue: z.core.$ZodIssue): FieldError {
  return { path: issue.path.map((key) => `/${String(key)}`).join(''), message: issue.message };
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);
