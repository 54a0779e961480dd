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
    expect(config.shopTenants).toEqual({});
    expect(config.defaultPhoneRegion).toBe('US');
  });

  it('reads the exports bucket when one is set (the stack sets it); none when unset or empty', () => {
    expect(loadConfig({ ...required, EXPORTS_BUCKET: 'stack-exportsbucket-1a2b' }).exportsBucket).toBe(
      'stack-exportsbucket-1a2b',
    );
    expect(loadConfig(required).exportsBucket).toBeUndefined();
    expect(loadConfig({ ...required, EXPORTS_BUCKET: '' }).exportsBucket).toBeUndefined();
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

  it('maps only the shops of SHOP_TENANTS, case-insensitively: no shop falls back to a default tenant', () => {
    const config = loadConfig({ ...required, SHOP_TENANTS: '{"acme.myshopify.com":"acme"}' });
    expect(tenantForShop(config, 'acme.MYSHOPIFY.com')).toBe('acme');
    expect(tenantForShop(config, 'other.myshopify.com')).toBeUndefined();
    expect(tenantForShop(config, undefined)).toBeUndefined();
    // A shop named like a property of every object maps to no tenant.
    expect(tenantForShop(config, 'constructor')).toBeUndefined();
    expect(tenantForShop(config, '__proto__')).toBeUndefined();
    expect(config.policiesFor('toString')).toEqual(loadConfig(required).policiesFor('acme'));
    // Nothing set: every shop is refused (it was the tenant `default`), whatever DEFAULT_TENANT says.
    expect(tenantForShop(loadConfig(required), 'other.myshopify.com')).toBeUndefined();
    expect(
      tenantForShop(loadConfig({ ...required, DEFAULT_TENANT: 'acme' }), 'other.myshopify.com'),
    ).toBeUndefined();
  });

  it.each([
    'Acme.myshopify.com',
    'https://acme.myshopify.com',
    'acme.myshopify.com.',
    'acme.myshopify.com/',
    'shop.acme.example',
    '',
  ])('refuses the SHOP_TENANTS key %j at load, naming it', (shop) => {
    const attempt = () => loadConfig({ ...required, SHOP_TENANTS: JSON.stringify({ [shop]: 'acme' }) });
    expect(attempt).toThrow(ConfigurationError);
    expect(attempt).toThrow(
      `SHOP_TENANTS: key ${JSON.stringify(shop)} must be a shop's <name>.myshopify.com domain`,
    );
  });

  it.each(['', '-acme', 'a'.repeat(65), 'ac me', 'acme/x'])(
    'refuses the tenant name %j in SHOP_TENANTS',
    (tenant) => {
      const attempt = () =>
        loadConfig({ ...required, SHOP_TENANTS: JSON.stringify({ 'acme.myshopify.com': tenant }) });
      expect(attempt).toThrow(/SHOP_TENANTS/);
    },
  );

  it('wants TENANT_SECRET_PREFIX to end in /, so its grants cannot reach a neighbouring prefix', () => {
    expect(() =>
      loadConfig({ ...required, TENANT_SECRET_PREFIX: 'klaviyo-identity-sync/prod/tenants' }),
    ).toThrow(/TENANT_SECRET_PREFIX: must end in \//);
    expect(loadConfig({ ...required, TENANT_SECRET_PREFIX: 'k/prod/' }).tenantSecretPrefix).toBe('k/prod/');
  });

  it('wants KLAVIYO_BASE_URL on https, but for loopback', () => {
    for (const url of [
      'http://a.klaviyo.com',
      'http://10.0.0.5:4569',
      'ftp://127.0.0.1',
      'http://127.0.0.1.example.com',
    ]) {
      expect(() => loadConfig({ ...required, KLAVIYO_BASE_URL: url }), url).toThrow(
        /KLAVIYO_BASE_URL: must be an https URL/,
      );
    }
    for (const url of [
      'https://a.klaviyo.com',
      'http://127.0.0.1:4569',
      'http://127.0.0.2:9',
      'http://localhost:4569',
      'http://[::1]:4569',
    ]) {
      expect(loadConfig({ ...required, KLAVIYO_BASE_URL: url }).klaviyo.baseUrl, url).toBe(url);
    }
  });
});
