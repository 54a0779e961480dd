import { z } from 'zod';

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

/** FIFO group: one customer of one tenant, so that customer's changes apply in order. */
export const messageGroupOf = (change: Pick<IdentityChange, 'tenant' | 'externalId'>) =>
  `${change.tenant}:${change.externalId}`.slice(0, 128);
