import { setTimeout as sleep } from 'node:timers/promises';
import { KLAVIYO_REVISION } from '../lib/config.js';
import { signErpRequest } from '../lib/erp/sign.js';
import { customerPayload, shopifyHeaders } from '../local/shopify-deliveries.js';
import { DEMO_TENANT } from './local-stack/demo-tenant.js';
import { type ExternalKlaviyo, externalKlaviyo, localPorts } from './local-stack/settings.js';

/**
 * `npm run demo`, against a running `npm start` (same LOCAL_* and KLAVIYO_* variables): shows the
 * demo customer's Klaviyo profile, sends a signed change with a new email and phone (Shopify's
 * customers/update, or with `erp` an ERP change), and waits for the worker to change the
 * profile. Exits 1 if it does not.
 */
const WAIT_MS = 20_000;

interface ProfileView {
  id: string;
  email: string | null;
  phone_number: string | null;
  external_id: string | null;
}

type ReadProfile = () => Promise<ProfileView | undefined>;

async function main() {
  const ports = localPorts();
  const klaviyo = externalKlaviyo();
  const readProfile = klaviyo ? klaviyoApiReader(klaviyo) : sandboxReader(ports.klaviyo);
  const send = process.argv[2] === 'erp' ? sendErpChange : sendShopifyUpdate;

  printProfile('Klaviyo profile before', await readProfile());

  const stamp = Date.now();
  const email = `ada.${stamp}@example.com`;
  const phone = `+14155550${101 + (stamp % 99)}`; // 555-0101…0199: fictional, and not the seeded 0100
  const response = await send(ports.http, { email, phone, occurredAt: new Date(stamp).toISOString() });
  console.log(`  -> HTTP ${response.status} ${await response.text()}`);
  if (!response.ok) throw new Error('the webhook was not accepted');

  const started = Date.now();
  const after = await pollUntil(readProfile, (profile) => profile?.email === email, WAIT_MS);
  printProfile(`\nKlaviyo profile after (${Date.now() - started} ms)`, after);
  if (after?.email !== email) throw new Error(`the profile did not change within ${WAIT_MS / 1000} s`);
  console.log('\nThe profile now has the new email.');
}

interface NewIdentifiers {
  email: string;
  phone: string;
  /** Later than any earlier run's, so the worker does not drop it as stale. */
  occurredAt: string;
}

async function sendShopifyUpdate(httpPort: number, change: NewIdentifiers): Promise<Response> {
  const url = `http://127.0.0.1:${httpPort}/webhooks/shopify`;
  const body = customerPayload({
    id: DEMO_TENANT.customer.externalId,
    email: change.email,
    phone: change.phone,
    updatedAt: change.occurredAt,
  });
  const headers = shopifyHeaders(body, {
    secret: DEMO_TENANT.shopifyWebhookSecret,
    shop: DEMO_TENANT.shopDomain,
  });
  console.log(`\nPOST ${url}  customers/update  email=${change.email} phone=${change.phone}`);
  return fetch(url, { method: 'POST', headers, body });
}

async function sendErpChange(httpPort: number, change: NewIdentifiers): Promise<Response> {
  const url = `http://127.0.0.1:${httpPort}/webhooks/erp/${DEMO_TENANT.tenant}`;
  const body = JSON.stringify({
    externalId: DEMO_TENANT.customer.externalId,
    email: change.email,
    phoneNumber: change.phone,
    occurredAt: change.occurredAt,
  });
  const headers = {
    'content-type': 'application/json',
    ...signErpRequest(body, DEMO_TENANT.erpWebhookSecret),
  };
  console.log(`\nPOST ${url}  ERP change  email=${change.email} phoneNumber=${change.phone}`);
  return fetch(url, { method: 'POST', headers, body });
}

/** The sandbox's control route: no key needed. */
function sandboxReader(port: number): ReadProfile {
  const url = `http://127.0.0.1:${port}/__sandbox/profiles?external_id=${DEMO_TENANT.customer.externalId}`;
  return async () => {
    const { profiles } = (await getJson(url, {})) as { profiles: ProfileView[] };
    return profiles[0];
  };
}

/** Klaviyo's own API, as the worker finds the profile. */
function klaviyoApiReader({ baseUrl, privateKey }: ExternalKlaviyo): ReadProfile {
  const filter = `equals(external_id,"${DEMO_TENANT.customer.externalId}")`;
  const url = `${baseUrl.replace(/\/+$/, '')}/api/profiles?filter=${encodeURIComponent(filter)}`;
  const headers = {
    authorization: `Klaviyo-API-Key ${privateKey}`,
    revision: process.env.KLAVIYO_REVISION || KLAVIYO_REVISION,
    accept: 'application/vnd.api+json',
  };
  return async () => {
    const { data } = (await getJson(url, headers)) as {
      data: { id: string; attributes: Omit<ProfileView, 'id'> }[];
    };
    const [profile] = data;
    return profile && { id: profile.id, ...profile.attributes };
  };
}

async function getJson(url: string, headers: Record<string, string>): Promise<unknown> {
  const response = await fetch(url, { headers });
  if (!response.ok) throw new Error(`GET ${url}: HTTP ${response.status} ${await response.text()}`);
  return response.json();
}

async function pollUntil(
  read: ReadProfile,
  done: (profile: ProfileView | undefined) => boolean,
  timeoutMs: number,
): Promise<ProfileView | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const profile = await read();
    if (done(profile) || Date.now() >= deadline) return profile;
    await sleep(250);
  }
}

function printProfile(title: string, profile: ProfileView | undefined) {
  console.log(`${title}:`);
  if (!profile) {
    console.log(`  (no profile with external_id ${DEMO_TENANT.customer.externalId})`);
    return;
  }
  const { id, external_id, email, phone_number } = profile;
  console.log(`  id=${id} external_id=${external_id} email=${email} phone_number=${phone_number}`);
}

main().catch((error: unknown) => {
  const cause = error instanceof Error && error.cause instanceof Error ? ` (${error.cause.message})` : '';
  console.error(`\nDemo failed: ${error instanceof Error ? error.message : error}${cause}`);
  if (cause.includes('ECONNREFUSED'))
    console.error('Is `npm start` running, with the same LOCAL_* and KLAVIYO_* variables?');
  process.exit(1);
});
