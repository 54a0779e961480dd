import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DEMO_TENANT } from '../../scripts/local-stack/demo-tenant.js';
import { SERVICE_DIR } from '../../scripts/local-stack/offline.js';
import { type LocalStack, startLocalStack } from '../../scripts/local-stack/stack.js';
import type { KlaviyoSandbox } from '../fakes/klaviyo-sandbox.js';
import { customerPayload, shopifyHeaders } from '../support/shopify.js';

/**
 * The stack as `npm start` runs it, on free ports: Shopify's webhook goes over HTTP into
 * serverless-offline, the queue poller invokes the worker through its Lambda endpoint, and the
 * worker changes the profile in the Klaviyo sandbox.
 */
let stack: LocalStack;
let sandbox: KlaviyoSandbox;
let tempDir: string;
const offlineOutput: string[] = [];

beforeAll(async () => {
  tempDir = await mkdtemp(join(tmpdir(), 'klaviyo-identity-sync-e2e-'));
  try {
    stack = await startLocalStack({
      peers: {}, // port 0: free ports
      httpPort: await freePort(),
      lambdaPort: await freePort(),
      // serverless-esbuild joins this onto the service dir: a relative path into our temp dir.
      esbuildWorkFolder: relative(SERVICE_DIR, join(tempDir, 'esbuild')),
      onOutput: (line) => offlineOutput.push(line),
      onPollError: (error) => offlineOutput.push(`[poller] ${error}`),
    });
  } catch (error) {
    throw new Error(`local stack did not start:\n${offlineOutput.join('\n')}`, { cause: error });
  }
  sandbox = stack.peers.klaviyo as KlaviyoSandbox;
}, 120_000);

afterAll(async () => {
  const group = stack?.offline.processGroup;
  await stack?.stop();
  if (tempDir) await rm(tempDir, { recursive: true, force: true });
  if (group !== undefined)
    expect(processGroupAlive(group), 'serverless-offline left processes behind').toBe(false);
});

beforeEach(({ onTestFailed }) => {
  offlineOutput.length = 0;
  onTestFailed(() => console.error(`serverless-offline output:\n${offlineOutput.join('\n')}`));
});

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
  return fetch(stack.offline.webhookUrl, { method: 'POST', headers, body });
}

const demoProfile = () => sandbox.findProfile({ external_id: DEMO_TENANT.customer.externalId });

async function pollFor(done: () => boolean, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  while (!done() && Date.now() < deadline) await sleep(100);
  return demoProfile();
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Signal 0 tests for existence: does anything of serverless-offline's process group remain? */
function processGroupAlive(group: number): boolean {
  try {
    process.kill(-group, 0);
    return true;
  } catch {
    return false;
  }
}
