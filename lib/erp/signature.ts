import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Standard Webhooks (https://www.standardwebhooks.com), symmetric scheme v1: the signature is
 * base64(HMAC-SHA256(key, `${webhook-id}.${webhook-timestamp}.${body}`)), keyed with the
 * base64-decoded part of a `whsec_…` secret.
 */
export const TIMESTAMP_TOLERANCE_SECONDS = 5 * 60;

export interface SignedMessage {
  /** `webhook-id`: the same on every redelivery of one message. */
  id: string;
  /** `webhook-timestamp`: Unix seconds, when this attempt was sent. */
  timestamp: string;
  /** The exact body bytes. */
  body: Uint8Array;
}

/** A delivery as received: any of the three headers may be missing. */
export interface ReceivedDelivery extends Partial<Omit<SignedMessage, 'body'>> {
  /** `webhook-signature`: space-separated `v1,<base64>` entries. */
  signature?: string | undefined;
  body: Uint8Array;
}

export type SignatureCheck =
  | { valid: true }
  | {
      valid: false;
      reason:
        | 'missing_headers'
        | 'invalid_timestamp'
        | 'timestamp_too_old'
        | 'timestamp_too_new'
        | 'no_match';
    };

/** The key bytes of a secret; the `whsec_` prefix is optional, as in the reference libraries. */
const keyOf = (secret: string) =>
  Buffer.from(secret.startsWith('whsec_') ? secret.slice('whsec_'.length) : secret, 'base64');

const digest = (key: Buffer, message: SignedMessage) =>
  createHmac('sha256', key).update(`${message.id}.${message.timestamp}.`).update(message.body).digest();

/** The signature of a message under one secret, base64 (the part after `v1,`). */
export function standardWebhookSignature(secret: string, message: SignedMessage): string {
  return digest(keyOf(secret), message).toString('base64');
}

/**
 * Checks a delivery against any of `secrets` (several during a rotation). Signature entries of
 * other versions than v1 are skipped. The timestamp must be within 5 minutes of `now` either
 * way, so a captured delivery cannot be replayed later.
 */
export function verifyStandardWebhook(
  delivery: ReceivedDelivery,
  secrets: readonly string[],
  now: Date,
): SignatureCheck {
  const { id, timestamp, signature, body } = delivery;
  if (!id || !timestamp || !signature) return { valid: false, reason: 'missing_headers' };
  if (!/^\d{1,15}$/.test(timestamp)) return { valid: false, reason: 'invalid_timestamp' };
  const ageSeconds = now.getTime() / 1000 - Number(timestamp);
  if (ageSeconds > TIMESTAMP_TOLERANCE_SECONDS) return { valid: false, reason: 'timestamp_too_old' };
  if (ageSeconds < -TIMESTAMP_TOLERANCE_SECONDS) return { valid: false, reason: 'timestamp_too_new' };

  const received = signature
    .split(' ')
    .filter((entry) => entry.startsWith('v1,'))
    .map((entry) => Buffer.from(entry.slice('v1,'.length), 'base64'));
  let valid = false;
  // Every pair is compared, not up to the first match, so timing does not tell which one matched.
  for (const secret of secrets) {
    const key = keyOf(secret);
    if (key.length === 0) continue;
    const expected = digest(key, { id, timestamp, body });
    for (const candidate of received) {
      if (candidate.length === expected.length && timingSafeEqual(candidate, expected)) valid = true;
    }
  }
  return valid ? { valid: true } : { valid: false, reason: 'no_match' };
}
