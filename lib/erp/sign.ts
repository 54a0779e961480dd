import { randomUUID } from 'node:crypto';
import { standardWebhookSignature } from './signature.js';

// A type, not an interface, so it fits where any header record is wanted (fetch, events).
export type StandardWebhookHeaders = {
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
};

/**
 * Signs a request body for the ERP endpoint: the three Standard Webhooks headers. A redelivery
 * passes the first attempt's `id`, so the endpoint can tell it is the same message.
 */
export function signErpRequest(
  body: string | Uint8Array,
  secret: string,
  options: { id?: string; now?: Date } = {},
): StandardWebhookHeaders {
  const id = options.id ?? `msg_${randomUUID()}`;
  const timestamp = String(Math.floor((options.now ?? new Date()).getTime() / 1000));
  const signature = standardWebhookSignature(secret, {
    id,
    timestamp,
    body: typeof body === 'string' ? Buffer.from(body, 'utf8') : body,
  });
  return { 'webhook-id': id, 'webhook-timestamp': timestamp, 'webhook-signature': `v1,${signature}` };
}
