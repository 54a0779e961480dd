import { describe, expect, it } from 'vitest';
import { KLAVIYO_REVISION, loadConfig, tenantForShop } from '../../lib/config.js';
import { ConfigurationError } from '../../lib/errors.js';

const required = {
  IDENTITY_CHANGES_QUEUE_URL: 'http://127.0.0.1:4566/000000000000/changes.fifo',
  DEAD_LETTER_QUEUE_URL: 'http://127.0.0.1:4566/000000000000/changes-dlq.fifo',
  SYNC_STATE_TABLE: 'sync-state',
};

describe('loadConfig', () => {
  it('applies the documented defaults', () => {
    const config = loadConfig(required);
    expect(config.klaviyo).toMatchObject({ baseUrl: 'https://a.klaviyo.com', revision: KLAVIYO_REVISION });
    expect(KLAVIYO_REVISION).toBe('2026-10-15');
    expect(config.defaultTenant).toBe('default');
    expect(config.defaultPhoneRegion).toBe('US');
  });

  it('names every missing or malformed setting', () => {
    const attempt = () =>
      loadConfig({
        ...required,
        SYNC_STATE_TABLE: undefined,
        KLAVIYO_REVISION: 'latest',
        SHOP_TENANTS: '{oops',
      });
    expect(attempt).toThrow(ConfigurationError);
    expect(attempt).toThrow(/SYNC_STATE_TABLE/);
    expect(attempt).toThrow(/KLAVIYO_REVISION/);
    expect(attempt).toThrow(/SHOP_TENANTS/);
  });

  it('maps shops to tenants case-insensitively, falling back to the default tenant', () => {
    const config = loadConfig({
      ...required,
      SHOP_TENANTS: '{"Acme.myshopify.com":"acme"}',
      DEFAULT_TENANT: '',
    });
    expect(tenantForShop(config, 'acme.MYSHOPIFY.com')).toBe('acme');
    expect(tenantForShop(config, 'other.myshopify.com')).toBeUndefined();
    // A shop named like a property of every object maps to no tenant.
    expect(tenantForShop(config, 'constructor')).toBeUndefined();
    expect(tenantForShop(config, '__proto__')).toBeUndefined();
    expect(config.policiesFor('toString')).toEqual(loadConfig(required).policiesFor('acme'));
    expect(tenantForShop(loadConfig(required), 'other.myshopify.com')).toBe('default');
  });
});
