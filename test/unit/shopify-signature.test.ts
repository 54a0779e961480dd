import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { isValidShopifySignature, signShopifyBody } from '../../lib/shopify/signature.js';

const body = Buffer.from('{"id":1,"email":"ada@example.com"}');

describe('Shopify webhook signature', () => {
  it('accepts the signature made with the secret', () => {
    expect(isValidShopifySignature(body, signShopifyBody(body, 's1'), ['s1'])).toBe(true);
  });

  it('accepts either secret during a rotation', () => {
    const signedWithOld = signShopifyBody(body, 'old');
    expect(isValidShopifySignature(body, signedWithOld, ['new', 'old'])).toBe(true);
    expect(isValidShopifySignature(body, signedWithOld, ['new'])).toBe(false);
  });

  it('refuses a tampered body, a missing, empty or malformed signature', () => {
    const signature = signShopifyBody(body, 's1');
    expect(isValidShopifySignature(Buffer.from(`${body} `), signature, ['s1'])).toBe(false);
    expect(isValidShopifySignature(body, undefined, ['s1'])).toBe(false);
    expect(isValidShopifySignature(body, '', ['s1'])).toBe(false);
    expect(isValidShopifySignature(body, 'bm90IGEgZGlnZXN0', ['s1'])).toBe(false);
    expect(isValidShopifySignature(body, signature, [])).toBe(false);
  });

  // Published vectors (test/fixtures/SOURCES.md says from where).
  const vectorsFile = new URL('../fixtures/webhooks/shopify/hmac-test-vectors.json', import.meta.url);
  it('matches the published HMAC test vectors (test/fixtures)', () => {
    const { vectors } = JSON.parse(readFileSync(vectorsFile, 'utf8')) as {
      vectors: { secret: string; body: string; expected_x_shopify_hmac_sha256: string }[];
    };
    expect(vectors.length).toBeGreaterThan(0);
    for (const vector of vectors) {
      const raw = Buffer.from(vector.body);
      expect(signShopifyBody(raw, vector.secret)).toBe(vector.expected_x_shopify_hmac_sha256);
      expect(
        isValidShopifySignature(raw, vector.expected_x_shopify_hmac_sha256, ['other', vector.secret]),
      ).toBe(true);
    }
  });
});
