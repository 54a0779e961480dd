import { createHmac, timingSafeEqual } from 'node:crypto';

/** Shopify's signature: base64(HMAC-SHA256(app client secret, raw body bytes)). */
export function signShopifyBody(body: Uint8Array | string, secret: string): string {
  return createHmac('sha256', secret).update(body).digest('base64');
}

/**
 * True when `signature` matches the body under any of `secrets` (several during a rotation,
 * since Shopify may keep signing with the old secret for up to an hour). Compared in constant
 * time on the decoded bytes.
 */
export function isValidShopifySignature(
  body: Uint8Array,
  signature: string | undefined,
  secrets: readonly string[],
): boolean {
  if (!signature) return false;
  const received = Buffer.from(signature.trim(), 'base64');
  if (received.length === 0) return false;
  let valid = false;
  // Check every secret, not the first match only, so timing does not tell which one matched.
  for (const secret of secrets) {
    const expected = createHmac('sha256', secret).update(body).digest();
    if (expected.length === received.length && timingSafeEqual(expected, received)) valid = true;
  }
  return valid;
}
