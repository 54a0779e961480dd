import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createKlaviyoKeys,
  createWebhookSecrets,
  readTenantSecret,
  type TenantSecretsOptions,
} from '../../lib/adapters/tenant-secrets.js';
import { PermanentError } from '../../lib/errors.js';
import { type LocalSecretsManager, startLocalSecretsManager } from '../../local/secrets-manager.js';

/** The tenant secrets adapters with the real SDK client, against the local Secrets Manager endpoint. */
let endpoint: LocalSecretsManager;
let client: SecretsManagerClient;
const PREFIX = 'test/tenants/';
const webhookIdOf = (tenant: string) => `${PREFIX}${tenant}/webhook`;
const keyIdOf = (tenant: string) => `${PREFIX}${tenant}/klaviyo`;
const webhookSecretOf = (shopifySecret: string) => ({ shopifyWebhookSecrets: [shopifySecret] });

beforeAll(async () => {
  endpoint = await startLocalSecretsManager();
  client = new SecretsManagerClient({
    region: 'us-east-1',
    endpoint: endpoint.url,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
});
afterAll(async () => {
  client.destroy();
  await endpoint.stop();
});

const options = (minFreshIntervalSeconds: number, more: Partial<TenantSecretsOptions> = {}) => ({
  prefix: PREFIX,
  cacheTtlSeconds: 300,
  minFreshIntervalSeconds,
  client,
  ...more,
});
const adapter = (minFreshIntervalSeconds: number, more: Partial<TenantSecretsOptions> = {}) =>
  createWebhookSecrets(options(minFreshIntervalSeconds, more));

/** Every message and stack in an error and its causes: what a log line of it can show. */
const loggable = (error: unknown): string => {
  const parts: string[] = [];
  for (let current = error as { message?: string; stack?: string; cause?: unknown } | undefined; current; ) {
    parts.push(String(current.message), String(current.stack), JSON.stringify(current));
    current = current.cause as typeof current;
  }
  return parts.join('\n');
};

describe('tenant secrets', () => {
  it('reads a secret once and serves it from the cache after that', async () => {
    endpoint.putSecret(webhookIdOf('cached'), webhookSecretOf('s1'));
    const secrets = adapter(30);
    expect((await secrets.get('cached')).shopifyWebhookSecrets).toEqual(['s1']);
    await secrets.get('cached');
    expect(endpoint.reads(webhookIdOf('cached'))).toBe(1);
  });

  it('reads afresh when asked, to pick up a rotation, but at most once per interval', async () => {
    endpoint.putSecret(webhookIdOf('rotating'), webhookSecretOf('old'));
    const secrets = adapter(30);
    await secrets.get('rotating');
    endpoint.putSecret(webhookIdOf('rotating'), webhookSecretOf('new'));
    expect((await secrets.get('rotating', { fresh: true })).shopifyWebhookSecrets).toEqual(['new']);
    // A stream of forged requests each asking for a fresh read costs no more Secrets Manager calls.
    for (let i = 0; i < 5; i++) await secrets.get('rotating', { fresh: true });
    expect(endpoint.reads(webhookIdOf('rotating'))).toBe(2);
  });

  it('reads afresh every time when the interval is 0', async () => {
    endpoint.putSecret(webhookIdOf('eager'), webhookSecretOf('s1'));
    const secrets = adapter(0);
    for (let i = 0; i < 3; i++) await secrets.get('eager', { fresh: true });
    expect(endpoint.reads(webhookIdOf('eager'))).toBe(3);
  });

  it('remembers a tenant without a secret instead of asking again', async () => {
    const secrets = adapter(30);
    for (let i = 0; i < 3; i++) {
      await expect(secrets.get('nobody', { fresh: true })).rejects.toMatchObject({
        reason: 'tenant_secret_missing',
      });
    }
    await expect(secrets.get('nobody')).rejects.toBeInstanceOf(PermanentError);
    expect(endpoint.reads(webhookIdOf('nobody'))).toBe(1);
  });

  it('remembers a bounded number of such tenants, forgetting the least recently asked first', async () => {
    const secrets = adapter(30, { maxRememberedMissing: 2 });
    for (const tenant of ['lru-a', 'lru-b', 'lru-a', 'lru-c']) {
      await expect(secrets.get(tenant)).rejects.toMatchObject({ reason: 'tenant_secret_missing' });
    }
    // lru-b was asked least recently when lru-c came: forgotten, so asked again; lru-a was not.
    await expect(secrets.get('lru-a')).rejects.toMatchObject({ reason: 'tenant_secret_missing' });
    await expect(secrets.get('lru-b')).rejects.toMatchObject({ reason: 'tenant_secret_missing' });
    expect([webhookIdOf('lru-a'), webhookIdOf('lru-b'), webhookIdOf('lru-c')].map(endpoint.reads)).toEqual([
      1, 2, 1,
    ]);
  });

  it('asks nothing for a name no tenant can have (too long, or not a name)', async () => {
    const secrets = adapter(30);
    for (const tenant of ['t'.repeat(600), '../x', 'a b']) {
      await expect(secrets.get(tenant)).rejects.toMatchObject({ reason: 'tenant_secret_missing' });
      expect(endpoint.reads(webhookIdOf(tenant)), tenant.slice(0, 10)).toBe(0);
    }
  });

  it('takes a name Secrets Manager refuses (ValidationException) as missing, and remembers it', async () => {
    const secrets = adapter(30, { prefix: `${'p'.repeat(500)}/` });
    for (let i = 0; i < 3; i++) {
      await expect(secrets.get('acme')).rejects.toMatchObject({ reason: 'tenant_secret_missing' });
    }
    expect(endpoint.reads(`${'p'.repeat(500)}/acme/webhook`)).toBe(1);
  });

  it('names the fields of a malformed secret', async () => {
    endpoint.putSecret(keyIdOf('broken'), { klaviyoPrivateKey: 'abc123' });
    await expect(createKlaviyoKeys(options(30)).get('broken')).rejects.toMatchObject({
      reason: 'tenant_secret_invalid',
      message: expect.stringContaining('klaviyoPrivateKey'),
    });
  });

  it('says a secret that is not JSON cannot be read, without a character of it in the error or its causes', async () => {
    const value = 'pk_live_leakcheck_0123456789';
    endpoint.putSecret(webhookIdOf('not-json'), value);
    const error = await adapter(30)
      .get('not-json')
      .catch((thrown: unknown) => thrown);
    expect(error).toMatchObject({ reason: 'tenant_secret_unreadable' });
    expect(loggable(error)).not.toContain('pk_live');
    expect(loggable(error)).not.toContain('leakcheck');
  });
});

describe('one secret per part: the intakes read only the webhook secret', () => {
  it('reads <prefix><tenant>/webhook for the webhook secrets, never the Klaviyo key secret', async () => {
    endpoint.putSecret(webhookIdOf('split'), {
      shopifyWebhookSecrets: ['s1'],
      erpWebhookSecrets: ['whsec_AAAA'],
    });
    endpoint.putSecret(keyIdOf('split'), { klaviyoPrivateKey: 'pk_split' });
    expect(await adapter(30).get('split')).toEqual({
      shopifyWebhookSecrets: ['s1'],
      erpWebhookSecrets: ['whsec_AAAA'],
    });
    expect(endpoint.reads(keyIdOf('split'))).toBe(0);
    expect(await createKlaviyoKeys(options(30)).get('split')).toEqual({ klaviyoPrivateKey: 'pk_split' });
    expect(await readTenantSecret(client, keyIdOf('split'))).toEqual({ klaviyoPrivateKey: 'pk_split' });
  });

  it('refuses a webhook secret that holds a Klaviyo key: it would be readable where it is not used', async () => {
    endpoint.putSecret(webhookIdOf('merged'), { klaviyoPrivateKey: 'pk_x', shopifyWebhookSecrets: ['s1'] });
    await expect(adapter(30).get('merged')).rejects.toMatchObject({
      reason: 'tenant_secret_invalid',
      message: expect.stringContaining('klaviyoPrivateKey'),
    });
  });
});
