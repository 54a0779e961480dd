import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTenantSecrets } from '../../lib/adapters/tenant-secrets.js';
import { PermanentError } from '../../lib/errors.js';
import { type LocalSecretsManager, startLocalSecretsManager } from '../../local/secrets-manager.js';

/** The tenant secrets adapter with the real SDK client, against the local Secrets Manager endpoint. */
let endpoint: LocalSecretsManager;
let client: SecretsManagerClient;
const PREFIX = 'test/tenants/';
const secretOf = (webhookSecret: string) => ({
  klaviyoPrivateKey: 'pk_test',
  shopifyWebhookSecrets: [webhookSecret],
});

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

const adapter = (minFreshIntervalSeconds: number) =>
  createTenantSecrets({ prefix: PREFIX, cacheTtlSeconds: 300, minFreshIntervalSeconds, client });

describe('tenant secrets', () => {
  it('reads a secret once and serves it from the cache after that', async () => {
    endpoint.putSecret(`${PREFIX}cached`, secretOf('s1'));
    const secrets = adapter(30);
    expect((await secrets.get('cached')).shopifyWebhookSecrets).toEqual(['s1']);
    await secrets.get('cached');
    expect(endpoint.reads(`${PREFIX}cached`)).toBe(1);
  });

  it('reads afresh when asked, to pick up a rotation, but at most once per interval', async () => {
    endpoint.putSecret(`${PREFIX}rotating`, secretOf('old'));
    const secrets = adapter(30);
    await secrets.get('rotating');
    endpoint.putSecret(`${PREFIX}rotating`, secretOf('new'));
    expect((await secrets.get('rotating', { fresh: true })).shopifyWebhookSecrets).toEqual(['new']);
    // A stream of forged requests each asking for a fresh read costs no more Secrets Manager calls.
    for (let i = 0; i < 5; i++) await secrets.get('rotating', { fresh: true });
    expect(endpoint.reads(`${PREFIX}rotating`)).toBe(2);
  });

  it('reads afresh every time when the interval is 0', async () => {
    endpoint.putSecret(`${PREFIX}eager`, secretOf('s1'));
    const secrets = adapter(0);
    for (let i = 0; i < 3; i++) await secrets.get('eager', { fresh: true });
    expect(endpoint.reads(`${PREFIX}eager`)).toBe(3);
  });

  it('remembers a tenant without a secret instead of asking again', async () => {
    const secrets = adapter(30);
    for (let i = 0; i < 3; i++) {
      await expect(secrets.get('nobody', { fresh: true })).rejects.toMatchObject({
        reason: 'tenant_secret_missing',
      });
    }
    await expect(secrets.get('nobody')).rejects.toBeInstanceOf(PermanentError);
    expect(endpoint.reads(`${PREFIX}nobody`)).toBe(1);
  });

  it('names the fields of a malformed secret', async () => {
    endpoint.putSecret(`${PREFIX}broken`, { klaviyoPrivateKey: 'abc123' });
    await expect(adapter(30).get('broken')).rejects.toMatchObject({
      reason: 'tenant_secret_invalid',
      message: expect.stringContaining('klaviyoPrivateKey'),
    });
  });
});
