import { createHash } from 'node:crypto';

/**
 * The largest letter put on the dead-letter queue. SQS takes 1 MiB since 2025, but 256 KiB was
 * its limit before and is still a queue's MaximumMessageSize where it was set so; 1 KiB is left
 * for the message attributes.
 */
export const DEAD_LETTER_MAX_BYTES = 255 * 1024;
/** How much is kept of a payload too large for a letter: enough to see what it was. */
export const PAYLOAD_EXCERPT_BYTES = 4 * 1024;

export const sha256Hex = (bytes: Uint8Array | string) => createHash('sha256').update(bytes).digest('hex');

/** The id of a delivery that names none: its bytes' SHA-256, the same on every retry of them. */
export const contentIdOf = (bytes: Uint8Array | string) => `sha256:${sha256Hex(bytes)}`;

/**
 * The letter with `payload` in it, whole when the letter then fits one message. Otherwise the
 * payload is cut to its first PAYLOAD_EXCERPT_BYTES, and its length and SHA-256 go in the context,
 * so that it can be matched with the sender's copy: a letter that cannot be sent would turn a
 * signed delivery into endless retries of the same bytes.
 */
// Generic over the letter, so that this module needs nothing of lib/dead-letter.ts, which uses it.
export function letterWithPayload<Letter extends { reason: string; context?: Record<string, unknown> }>(
  letter: Letter,
  payload: Buffer | string,
): Letter & { payload: string; context?: Record<string, unknown> } {
  const bytes = typeof payload === 'string' ? Buffer.from(payload) : payload;
  if (bytes.length <= DEAD_LETTER_MAX_BYTES) {
    const whole = { ...letter, payload: bytes.toString('utf8') };
    if (Buffer.byteLength(JSON.stringify(whole)) <= DEAD_LETTER_MAX_BYTES) return whole;
  }
  return {
    ...letter,
    payload: bytes.subarray(0, PAYLOAD_EXCERPT_BYTES).toString('utf8'),
    context: {
      ...letter.context,
      payloadBytes: bytes.length,
      payloadSha256: sha256Hex(bytes),
      payloadKeptBytes: Math.min(bytes.length, PAYLOAD_EXCERPT_BYTES),
    },
  };
}
