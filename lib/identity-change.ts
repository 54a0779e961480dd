import * as z from 'zod';

/**
 * One change of a customer's identifiers, as the system of record reported it. This is the queue
 * message between intake and the worker. For email and phoneNumber: a value sets it, `null`
 * clears it, absent leaves Klaviyo's value as it is.
 */
export const identityChangeSchema = z.object({
  tenant: z.string().min(1),
  source: z.enum(['shopify', 'erp', 'cli']),
  externalId: z.string().min(1).max(255),
  email: z.string().min(3).nullable().optional(),
  phoneNumber: z
    .string()
    .regex(/^\+[1-9]\d{6,14}$/)
    .nullable()
    .optional(),
  /** What the identifiers were before, when the source knows (ERPs can say): helps find the profile. */
  previous: z
    .object({
      email: z.string().min(3).optional(),
      phoneNumber: z
        .string()
        .regex(/^\+[1-9]\d{6,14}$/)
        .optional(),
    })
    .optional(),
  /** When the source says the change happened; orders changes per customer. */
  occurredAt: z.iso.datetime({ offset: true }),
  /**
   * `occurredAt` is vouched for by no signature (a Shopify header time): the change is ordered by
   * it but never makes a later change stale (lib/sync/plan.ts, watermarkAfter). Absent: signed.
   */
  occurredAtUnsigned: z.boolean().optional(),
  /** The delivery's id at the source (Shopify webhook id): the deduplication key. */
  sourceEventId: z.string().min(1).max(128),
  /** The source's id of the action, shared by all deliveries of one change (Shopify event id). */
  eventId: z.string().optional(),
  receivedAt: z.iso.datetime({ offset: true }),
});

export type IdentityChange = z.infer<typeof identityChangeSchema>;

/** The identifier attributes we keep in step on a Klaviyo profile. */
export interface Identifiers {
  email?: string | null;
  phone_number?: string | null;
  external_id?: string | null;
}

/**
 * Shopify merged two customers: it kept one and deleted the other. Queued in the deleted
 * customer's message group (see messageGroupOf), so it applies after that customer's own changes
 * queued before it; the worker then merges the deleted customer's Klaviyo profile into the kept
 * customer's (lib/sync/sync-customer-merge.ts).
 */
export const customerMergeSchema = z.object({
  kind: z.literal('customerMerge'),
  tenant: identityChangeSchema.shape.tenant,
  source: z.literal('shopify'),
  /** The customer Shopify kept: its Klaviyo profile is the merge's destination. */
  keptExternalId: identityChangeSchema.shape.externalId,
  /** The customer Shopify deleted: its profile is merged away, and its later changes are skipped. */
  deletedExternalId: identityChangeSchema.shape.externalId,
  /** Shopify's status of the merge: only `completed` is carried out. */
  status: z.string().min(1).max(64),
  occurredAt: identityChangeSchema.shape.occurredAt,
  sourceEventId: identityChangeSchema.shape.sourceEventId,
  eventId: identityChangeSchema.shape.eventId,
  receivedAt: identityChangeSchema.shape.receivedAt,
});

export type CustomerMerge = z.infer<typeof customerMergeSchema>;

/**
 * Who asked for a compliance request: Shopify's mandatory compliance webhooks, an ERP's erasure
 * entry, or an operator through the CLI.
 */
const requestSource = identityChangeSchema.shape.source;

/**
 * What every compliance request carries: as little as possible. The customer's id (the exact
 * digits of Shopify's), who asked and when, never an email or phone: the erasure and the export
 * go by the customer's record (lib/privacy/erasure.ts).
 */
const customerRequestShape = {
  tenant: identityChangeSchema.shape.tenant,
  source: requestSource,
  externalId: identityChangeSchema.shape.externalId,
  /** When it was asked for (the delivery's receipt). */
  requestedAt: z.iso.datetime({ offset: true }),
  sourceEventId: identityChangeSchema.shape.sourceEventId,
  receivedAt: identityChangeSchema.shape.receivedAt,
};

/**
 * Erase everything held about one customer (Shopify's `customers/redact`, an ERP erasure entry,
 * `identity-sync forget`). Queued in the customer's message group, so it comes after the
 * customer's changes queued before it.
 */
export const customerRedactSchema = z.object({ kind: z.literal('customerRedact'), ...customerRequestShape });
export type CustomerRedact = z.infer<typeof customerRedactSchema>;

/** Export everything held about one customer (Shopify's `customers/data_request`), in its group. */
export const customerDataRequestSchema = z.object({
  kind: z.literal('customerDataRequest'),
  ...customerRequestShape,
  /** The requester's id of the request (Shopify's `data_request.id`): names the export. */
  requestId: z.string().min(1).max(128).optional(),
});
export type CustomerDataRequest = z.infer<typeof customerDataRequestSchema>;

/** Erase everything of a tenant (Shopify's `shop/redact`, 48 hours after the app's uninstall). */
export const shopRedactSchema = z.object({
  kind: z.literal('shopRedact'),
  tenant: identityChangeSchema.shape.tenant,
  source: requestSource,
  /** The shop that was uninstalled, as its signed payload names it. */
  shopDomain: z.string().min(1).max(255),
  requestedAt: customerRequestShape.requestedAt,
  sourceEventId: identityChangeSchema.shape.sourceEventId,
  receivedAt: identityChangeSchema.shape.receivedAt,
});
export type ShopRedact = z.infer<typeof shopRedactSchema>;

/** The compliance requests: they erase or export, never apply. */
export type ComplianceRequest = CustomerRedact | CustomerDataRequest | ShopRedact;

/**
 * Every kind of message the changes queue carries, by the `kind` tag it has on the wire, with the
 * schema that reads it. Adding a kind (e.g. a compliance request): its schema, with its own
 * `kind` literal, here and in QueuedChange; its letter field in lib/dead-letter.ts (LETTER_FIELD);
 * its handler in lib/sync/handle-message.ts. TypeScript points at each place.
 */
export const QUEUED_KINDS = {
  identityChange: identityChangeSchema,
  customerMerge: customerMergeSchema,
  customerRedact: customerRedactSchema,
  customerDataRequest: customerDataRequestSchema,
  shopRedact: shopRedactSchema,
} as const;

export type QueuedKind = keyof typeof QUEUED_KINDS;

/**
 * What the changes queue carries: a customer's identity change, or a merge of two customers. In
 * memory an identity change has no `kind` (it is the one every source makes); every other kind
 * carries its literal. On the wire every message is tagged (serializeQueuedChange).
 */
export type QueuedChange = IdentityChange | CustomerMerge | ComplianceRequest;

export const kindOf = (queued: QueuedChange): QueuedKind =>
  'kind' in queued && typeof queued.kind === 'string' ? queued.kind : 'identityChange';

export const isCustomerMerge = (queued: QueuedChange): queued is CustomerMerge =>
  kindOf(queued) === 'customerMerge';

export const isIdentityChange = (queued: QueuedChange): queued is IdentityChange =>
  kindOf(queued) === 'identityChange';

const COMPLIANCE_KINDS: ReadonlySet<QueuedKind> = new Set([
  'customerRedact',
  'customerDataRequest',
  'shopRedact',
]);

export const isComplianceRequest = (queued: QueuedChange): queued is ComplianceRequest =>
  COMPLIANCE_KINDS.has(kindOf(queued));

/** A queued message's body: the message with its `kind` tag. */
export const serializeQueuedChange = (queued: QueuedChange) =>
  JSON.stringify({ ...queued, kind: kindOf(queued) });

/**
 * Reads a message of the changes queue from its JSON: by its `kind` tag, or, with none (messages
 * queued before the tag), as an identity change. The problem in words when it fits no kind.
 */
export function parseQueuedChange(
  json: Record<string, unknown>,
): { queued: QueuedChange } | { problem: string; issues?: z.ZodError } {
  const kind = json.kind ?? 'identityChange';
  if (typeof kind !== 'string' || !Object.hasOwn(QUEUED_KINDS, kind))
    return { problem: `a queued message of an unknown kind '${String(kind)}'` };
  const parsed = QUEUED_KINDS[kind as QueuedKind].safeParse(json);
  return parsed.success
    ? { queued: parsed.data }
    : { problem: `a queued ${kind} that does not fit its shape`, issues: parsed.error };
}

/**
 * The customer whose message group a queued change goes in: a merge goes with the deleted
 * customer; a shop's erasure is no customer's (undefined).
 */
export const customerOf = (queued: Pick<IdentityChange, 'externalId'> | CustomerMerge | ShopRedact) =>
  'deletedExternalId' in queued
    ? queued.deletedExternalId
    : 'externalId' in queued
      ? queued.externalId
      : undefined;

/**
 * FIFO group: one customer of one tenant, so that customer's changes apply in order. A shop's
 * erasure has a group of its own, named by its delivery, so it holds no customer back.
 */
export const messageGroupOf = (
  queued: Pick<IdentityChange, 'tenant' | 'externalId' | 'sourceEventId'> | CustomerMerge | ShopRedact,
) => {
  const customer = customerOf(queued);
  return customer === undefined
    ? `${queued.tenant}:shop-redact:${queued.sourceEventId}`.slice(0, 128)
    : `${queued.tenant}:${customer}`.slice(0, 128);
};
