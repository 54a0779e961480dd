import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseShopifyCustomer } from '../../lib/shopify/customer-payload.js';
import { BIG_CUSTOMER_ID, customerPayload } from '../../local/shopify-deliveries.js';

describe('parseShopifyCustomer', () => {
  it('keeps an id beyond 2^53 exactly, from the GraphQL id', () => {
    const result = parseShopifyCustomer(customerPayload());
    expect(result).toEqual({
      ok: true,
      customer: {
        customerId: BIG_CUSTOMER_ID,
        email: 'ada@example.com',
        phone: '+14155550123',
        updatedAt: '2026-05-01T12:00:00-04:00',
      },
    });
  });

  it('keeps the raw digits of the numeric id when there is no GraphQL id', () => {
    const result = parseShopifyCustomer(customerPayload({ withoutGraphqlId: true }));
    expect(result.ok && result.customer.customerId).toBe(BIG_CUSTOMER_ID);
    expect(Number(BIG_CUSTOMER_ID).toString()).not.toBe(BIG_CUSTOMER_ID); // a JS number would have lost it
  });

  it('accepts null email and phone', () => {
    const result = parseShopifyCustomer(customerPayload({ email: null, phone: null }));
    expect(result.ok && result.customer).toMatchObject({ email: null, phone: null });
  });

  it('parses the legacy (2024-10) shape with tags and consent objects', () => {
    expect(parseShopifyCustomer(customerPayload({ legacyFields: true })).ok).toBe(true);
  });

  it('refuses non-JSON and bodies that are not customers, saying why', () => {
    const notJson = parseShopifyCustomer('{"id":');
    expect(notJson.ok).toBe(false);
    expect(!notJson.ok && notJson.reason).toMatch(/not JSON/);
    const noId = parseShopifyCustomer('{"email":"a@b.co"}');
    expect(!noId.ok && noId.reason).toMatch(/id/);
    const negative = parseShopifyCustomer('{"id":-5}');
    expect(negative.ok).toBe(false);
  });

  // Conformance with Shopify's own samples (test/fixtures/SOURCES.md says from where).
  const samples = new URL('../fixtures/webhooks/shopify/', import.meta.url);
  it('parses every published customers sample (test/fixtures)', () => {
    const files = readdirSync(samples).filter((name) => name.startsWith('customers-'));
    expect(files.length).toBeGreaterThanOrEqual(4);
    for (const file of files) {
      const result = parseShopifyCustomer(readFileSync(new URL(file, samples), 'utf8'));
      expect(result.ok, file).toBe(true);
      if (result.ok && file.includes('shopify-sample'))
        expect(result.customer.customerId).toBe('706405506930370084');
    }
  });
});
