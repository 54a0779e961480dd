import * as z from 'zod';

/** What `POST /webhooks/erp/{tenant}` answers (contract.ts): a result per change, or a refusal. */

const fieldErrorSchema = z
  .object({
    path: z.string().describe('JSON Pointer (RFC 6901) into the change, or into the body; "" is the whole.'),
    message: z.string(),
  })
  .meta({ id: 'ErpFieldError' });

const resultIdentification = {
  index: z.int().min(0).describe('Position in `changes`; 0 for a single change.'),
  id: z.string().optional().describe('The change’s `id`, when it sent one.'),
  externalId: z.string().optional(),
};

const changeResultSchema = z
  .discriminatedUnion('status', [
    z.object({ ...resultIdentification, status: z.literal('accepted') }),
    z.object({
      ...resultIdentification,
      status: z.literal('rejected'),
      errors: z.array(fieldErrorSchema).min(1),
    }),
  ])
  .meta({
    id: 'ErpChangeResult',
    description:
      'accepted: queued, to be applied to Klaviyo shortly. rejected: not applied, kept on the dead-letter queue with the errors; fix and send it again.',
  });

export const erpReceiptSchema = z
  .object({ results: z.array(changeResultSchema) })
  .meta({ id: 'ErpReceipt', description: 'One result per change, in the order sent.' });

export const erpRefusalSchema = z
  .object({ error: z.string(), errors: z.array(fieldErrorSchema).optional() })
  .meta({ id: 'ErpRefusal', description: 'The request as a whole was refused; nothing was queued.' });

export type FieldError = z.output<typeof fieldErrorSchema>;
export type ChangeResult = z.output<typeof changeResultSchema>;
export type ErpReceipt = z.output<typeof erpReceiptSchema>;
export type ErpRefusal = z.output<typeof erpRefusalSchema>;
