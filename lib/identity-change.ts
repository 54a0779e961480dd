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

/** What the changes queue carries: a customer's identity change, or a merge of two customers. */
export type QueuedChange = IdentityChange | CustomerMerge;

export const isCustomerMerge = (queued: QueuedChange): queued is CustomerMerge =>
  'kind' in queued && queued.kind === 'customerMerge';

/** The customer whose message group a queued change goes in: a merge goes with the deleted customer. */
export const customerOf = (queued: Pick<IdentityChange, 'externalId'> | CustomerMerge) =>
  'kind' in queued ? queued.deletedExternalId : queued.externalId;

/** FIFO group: one customer of one tenant, so that customer's changes apply in order. */
export const messageGroupOf = (queued: Pick<IdentityChange, 'tenant' | 'externalId'> | CustomerMerge) =>
  `${queued.tenant}:${customerOf(queued)}`.slice(0, 128);
