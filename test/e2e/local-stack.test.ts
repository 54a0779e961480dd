import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { send } from '../../cli/commands/send.js';
import { customerPayload, shopifyHeaders } from '../../local/shopify-deliveries.js';
import { DEMO_TENANT } from '../../scripts/local-stack/demo-tenant.js';
import { cliEnvironment, localStackExtras } from '../../scripts/local-stack/env-block.js';
import { captureIo } from '../support/cli.js';
import { useLocalStack } from '../support/stack-under-test.js';

/**
 * The stack as `npm start` runs it, on free ports: Shopify's webhook goes over HTTP into
 * serverless-offline, the queue poller invokes the worker through its Lambda endpoint, and the
 * worker changes the profile in the Klaviyo sandbox. KLAVIYO_TIMEOUT_MS is set as in the shell
 * running `npm start`, shorter than the default, to see it reach the worker.
 */
const KLAVIYO_TIMEOUT_MS = 1_500;
const e2e = useLocalStack('e2e', { KLAVIYO_TIMEOUT_MS: String(KLAVIYO_TIMEOUT_MS) });

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

  it('gives up on a slow Klaviyo answer after KLAVIYO_TIMEOUT_MS and applies the change on a retry', async () => {
    // The worker's first Klaviyo request (a lookup, or the PATCH itself once the customer is
    // known) would be answered after 5 s; the fault is used up by it.
    e2e.sandbox.injectFaults([{ delayMs: 5_000, pathPrefix: '/api/profiles' }]);
    const since = Date.now();
    const email = `ada.slow.${since}@example.com`;
    expect((await postWebhook(email)).status).toBe(200);

    expect((await pollFor(() => demoProfile()?.email === email, 20_000))?.email).toBe(email);
    const [slow, retried] = e2e.sandbox.requests.filter((request) => request.receivedAt >= since);
    const waitedMs = (retried?.receivedAt ?? Number.NaN) - (slow?.receivedAt ?? Number.NaN);
    // The timeout plus a backoff, well before the slow answer's 5 s (timers are coarse).
    expect(waitedMs).toBeGreaterThanOrEqual(KLAVIYO_TIMEOUT_MS - 500);
    expect(waitedMs).toBeLessThan(4_000);
    expect(retried?.url).toEqual(slow?.url);
    expect(retried?.method).toEqual(slow?.method);
  });
});

describe('identity-sync send, with the environment npm start prints', () => {
  it.each([
    ['an ERP change', []],
    ['a Shopify customers/update', ['--as', 'shopify', '--phone', '+14155550142']],
    ['a Shopify event through the EventBridge function', ['--as', 'eventbridge', '--phone', '+14155550142']],
  ])('delivers %s to the profile', async (label, args) => {
    const env = cliEnvironment(e2e.stack.peers.env, localStackExtras(e2e.stack.offline, true));
    const email = `ada.send.${label.split(' ').at(-1)?.toLowerCase()}.${Date.now()}@example.com`;
    const { io, written } = captureIo(env);
    const code = await send(
      ['--external-id', DEMO_TENANT.customer.externalId, '--email', email, ...args],
      io,
    );
    expect({ code, ...written }).toMatchObject({ code: 0, stderr: '' });
    expect((await pollFor(() => demoProfile()?.email === email, 20_000))?.email).toBe(email);
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
