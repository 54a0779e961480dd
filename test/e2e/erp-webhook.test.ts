import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { send } from '../../cli/commands/send.js';
import { signErpRequest } from '../../lib/erp/sign.js';
import { DEMO_TENANT } from '../../scripts/local-stack/demo-tenant.js';
import { captureIo } from '../support/cli.js';
import { useLocalStack } from '../support/stack-under-test.js';

/**
 * The ERP endpoint as `npm start` runs it, on free ports: signed requests go over HTTP into
 * serverless-offline (route POST /webhooks/erp/{tenant}), the queue poller invokes the worker
 * through its Lambda endpoint, and the worker changes the profiles in the Klaviyo sandbox.
 */
const e2e = useLocalStack('erp-e2e');
const { tenant, erpWebhookSecret: secret } = DEMO_TENANT;
const run = Date.now();

function post(path: string, body: unknown) {
  const text = JSON.stringify(body);
  return fetch(`${e2e.baseUrl}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...signErpRequest(text, secret) },
    body: text,
  });
}

async function until(done: () => boolean, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (!done() && Date.now() < deadline) await sleep(100);
  return done();
}

describe('the ERP endpoint over HTTP', () => {
  it('applies a signed batch, including a profile found only through its previous email', async () => {
    const email = (label: string) => `${label}.${run}@example.com`;
    const ada = e2e.sandbox.seedProfile({ external_id: `ERP-ADA-${run}`, email: email('ada.before') });
    const bob = e2e.sandbox.seedProfile({
      external_id: `ERP-BOB-${run}`,
      email: email('bob'),
      phone_number: '+14155550188',
    });
    // Known to Klaviyo by email only (say, from a signup form): no external_id yet.
    const cy = e2e.sandbox.seedProfile({ email: email('cy.before') });
    const now = new Date().toISOString();

    const response = await post(`/webhooks/erp/${tenant}`, {
      changes: [
        { externalId: `ERP-ADA-${run}`, email: email('ada.after'), occurredAt: now },
        { externalId: `ERP-BOB-${run}`, phoneNumber: null, occurredAt: now },
        {
          externalId: `ERP-CY-${run}`,
          email: email('cy.after'),
          previous: { email: email('cy.before') },
          occurredAt: now,
        },
        { externalId: `ERP-DAN-${run}`, phoneNumber: 'not a number', occurredAt: now },
      ],
    });
    expect(response.status).toBe(202);
    expect(
      ((await response.json()) as { results: { status: string }[] }).results.map((r) => r.status),
    ).toEqual(['accepted', 'accepted', 'accepted', 'rejected']);

    const applied = () =>
      e2e.sandbox.getProfile(ada.id)?.email === email('ada.after') &&
      e2e.sandbox.getProfile(bob.id)?.phone_number === null &&
      e2e.sandbox.getProfile(cy.id)?.email === email('cy.after');
    await until(applied);
    expect(e2e.sandbox.getProfile(ada.id)?.email).toBe(email('ada.after'));
    expect(e2e.sandbox.getProfile(bob.id)).toMatchObject({ phone_number: null, email: email('bob') });
    expect(e2e.sandbox.getProfile(cy.id)).toMatchObject({
      email: email('cy.after'),
      external_id: `ERP-CY-${run}`,
    });
    expect(e2e.sandbox.findProfile({ external_id: `ERP-DAN-${run}` })).toBeUndefined();
  });

  it('takes a change sent with the send command', async () => {
    const profile = e2e.sandbox.seedProfile({
      external_id: `ERP-CLI-${run}`,
      email: `cli.before.${run}@example.com`,
    });
    const { io, written } = captureIo({ ERP_WEBHOOK_SECRET: secret });
    const code = await send(
      [
        '--url',
        e2e.baseUrl,
        '--tenant',
        tenant,
        '--external-id',
        `ERP-CLI-${run}`,
        '--email',
        `cli.after.${run}@example.com`,
      ],
      io,
    );
    expect(code, written.stdout + written.stderr).toBe(0);
    await until(() => e2e.sandbox.getProfile(profile.id)?.email === `cli.after.${run}@example.com`);
    expect(e2e.sandbox.getProfile(profile.id)?.email).toBe(`cli.after.${run}@example.com`);
  });

  it('answers 401 for a tenant it does not know, as for a wrong signature, and changes nothing', async () => {
    const profile = e2e.sandbox.seedProfile({
      external_id: `ERP-NOBODY-${run}`,
      email: `nobody.${run}@example.com`,
    });
    const response = await post('/webhooks/erp/nobody', {
      externalId: `ERP-NOBODY-${run}`,
      email: `nobody.changed.${run}@example.com`,
      occurredAt: new Date().toISOString(),
    });
    expect(response.status).toBe(401);
    expect(await response.json()).toEqual({ error: 'invalid signature' }); // as for a wrong signature
    await sleep(1_500); // a poll cycle: the profile must stay as it was
    expect(e2e.sandbox.getProfile(profile.id)?.email).toBe(`nobody.${run}@example.com`);
  });
});
