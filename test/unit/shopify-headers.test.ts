import { describe, expect, it } from 'vitest';
import { lowerCaseHeaders } from '../../lib/http.js';
import { readShopifyDelivery, shopifyHeader, shopifyHeaderName } from '../../lib/shopify/headers.js';

const PROCESSED = new Set(['customers/update']);

describe('readShopifyDelivery', () => {
  it.each([
    [{}, 'topic (none) is not processed'],
    [{ 'X-Shopify-Topic': 'orders/create' }, 'topic orders/create is not processed'],
  ])('says why %j is not a delivery we process', (headers, reason) => {
    expect(readShopifyDelivery(lowerCaseHeaders(headers), PROCESSED)).toEqual({ valid: false, reason });
  });

  it("reads a processed delivery's facts, whatever case the headers came in, leaving out those missing", () => {
    const headers = lowerCaseHeaders({
      'X-Shopify-Topic': 'customers/update',
      'x-shopify-shop-domain': 'demo.myshopify.com',
      'X-Shopify-API-Version': '2026-01',
      'X-Shopify-Webhook-Id': 'w-1',
      'X-Shopify-Triggered-At': '2026-01-01T00:00:00Z',
    });
    expect(readShopifyDelivery(headers, PROCESSED)).toEqual({
      valid: true,
      topic: 'customers/update',
      shop: 'demo.myshopify.com',
      apiVersion: '2026-01',
      webhookId: 'w-1',
      triggeredAt: '2026-01-01T00:00:00Z',
    });
  });

  it('reads one header by its role, and names it as Shopify writes it', () => {
    const headers = lowerCaseHeaders({ 'X-Shopify-Hmac-SHA256': 'c2ln' });
    expect(shopifyHeader(headers, 'signature')).toBe('c2ln');
    expect(shopifyHeaderName('signature')).toBe('X-Shopify-Hmac-Sha256');
  });
});
