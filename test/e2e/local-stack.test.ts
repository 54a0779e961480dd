import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { customerPayload, shopifyHeaders } from '../../local/shopify-deliveries.js';
import { DEMO_TENANT } from '../../scripts/local-stack/demo-tenant.js';
import { useLocalStack } from '../support/stack-under-test.js';

/**
 * The stack as `npm start` runs it, on free ports: Shopify's webhook goes over HTTP into
 * serverless-offline, the queue poller invokes the worker through its Lambda endpoint, and the
 * worker changes the profile in the Klaviyo sandbox.
 */
const e2e = useLocalStack('e2e');

describe('the local stack, over HTTP', () => {
  it('applies a signed customers/update to the Klaviyo profile', async () => {
    const email = `ada.e2e.${Date.now()}@example.com`;
    const response = await postWebhook(email);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'queued' });

    const profile = await pollFor(() => demoProfile()?.email === email, 20_000);
    expect(profile).toMatchObject({ email, phone_number: '+14155550142' });
  });

  it('answers 401 to a bad signature and leaves the profile alone', async () => {
    const before = demoProfile();
    const response = await postWebhook('forged@example.com', 'bm90IHRoZSBzaWduYXR1cmU=');
    expect(response.status).toBe(401);
    await sleep(1_500); // longer than a poll cycle
    expect(demoProfile()).toEqual(before);
  });
});

function postWebhook(email: string, signature?: string) {
  const body = customerPayload({
    id: DEMO_TENANT.customer.externalId,
    email,
    phone: '+1 415 555 0142',
    updatedAt: new Date().toISOString(),
  });
  const headers = shopifyHeaders(body, {
    secret: DEMO_TENANT.shopifyWebhookSecret,
    shop: DEMO_TENANT.shopDomain,
    ...(signature && { signature }),
  });
  return fetch(e2e.stack.offline.webhookUrl, { method: 'POST', headers, body });
}

const demoProfile = () => e2e.sandbox.findProfile({ external_id: DEMO_TENANT.customer.externalId });

async function pollFor(done: () => boolean, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  while (!done() && Date.now() < deadline) await sleep(100);
  return demoProfile();
}
