import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { erpWebhookSource } from '../../lib/erp/receive-webhook.js';
import { signErpRequest } from '../../lib/erp/sign.js';
import { TransientError } from '../../lib/errors.js';
import type { WebhookRequest } from '../../lib/http.js';
import type { IdentityChange } from '../../lib/identity-change.js';
import { type IntakeDependencies, NOT_AUTHENTICATED, receiveWebhook } from '../../lib/intake/receive.js';
import { fakeIntake, NOW, tenantSecret } from '../support/intake.js';

/**
 * What the ERP source adds to the shared intake (test/unit/intake.test.ts has the shared steps):
 * Standard Webhooks headers, batches queued in order, rejected changes kept one by one.
 */
const SECRET = `whsec_${Buffer.from('unit-test-erp-key').toString('base64')}`;

function intake(overrides: Partial<IntakeDependencies> = {}) {
  return fakeIntake({ acme: tenantSecret({ erpWebhookSecrets: [SECRET] }) }, overrides);
}

const receiveErpWebhook = (request: WebhookRequest, deps: IntakeDependencies) =>
  receiveWebhook(erpWebhookSource({ defaultPhoneRegion: 'US' }), request, deps);

function request(body: unknown, options: { id?: string; now?: Date } = {}) {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  return {
    pathParameters: { tenant: 'acme' },
    headers: signErpRequest(text, SECRET, { now: NOW, ...options }),
    body: Buffer.from(text),
  };
}

const change = (externalId: string, email: string) => ({
  externalId,
  email,
  occurredAt: '2026-05-01T11:00:00Z',
});

describe('signatures', () => {
  it.each([
    ['expired', new Date(NOW.getTime() - 301_000), /more than 5 minutes old/],
    ['ahead of our clock', new Date(NOW.getTime() + 301_000), /ahead of our clock/],
  ])('refuses a timestamp %s, whatever the tenant, without reading a secret', async (_, now, error) => {
    const { deps, get } = intake();
    for (const tenant of ['acme', 'nobody']) {
      const stale = { ...request(change('C-1', 'a@example.com'), { now }), pathParameters: { tenant } };
      const response = await receiveErpWebhook(stale, deps);
      expect(response).toEqual({ statusCode: 401, body: { error: expect.stringMatching(error) } });
    }
    expect(get).not.toHaveBeenCalled();
  });

  it('names the missing headers', async () => {
    const { deps } = intake();
    const unsigned = { pathParameters: { tenant: 'acme' }, headers: {}, body: Buffer.from('{}') };
    expect(await receiveErpWebhook(unsigned, deps)).toEqual({
      statusCode: 401,
      body: { error: 'webhook-id, webhook-timestamp and webhook-signature are required' },
    });
  });

  it.each(['', 'a/b', '../demo', 'a b', 'acme%2F..'])(
    'refuses the tenant name %j like a wrong signature, without asking for its secret',
    async (name) => {
      const { deps, get } = intake();
      const response = await receiveErpWebhook(
        { ...request(change('C-1', 'a@example.com')), pathParameters: { tenant: name } },
        deps,
      );
      expect(response).toEqual(NOT_AUTHENTICATED);
      expect(get).not.toHaveBeenCalled();
    },
  );
});

describe('queueing', () => {
  it('answers 503 when the queue fails, and a redelivery queues under the same keys', async () => {
    const attempts: string[][] = [];
    let failing = true;
    const { deps } = intake({
      queue: {
        enqueue: async (queuedChange: IdentityChange) => {
          attempts.at(-1)?.push(queuedChange.sourceEventId);
          if (failing && queuedChange.externalId === 'C-2')
            throw new TransientError('queue_unavailable', 'down');
        },
      },
    });
    const body = { changes: [change('C-1', 'a@example.com'), change('C-2', 'b@example.com')] };
    attempts.push([]);
    const first = await receiveErpWebhook(request(body, { id: 'msg_retry' }), deps);
    expect(first).toEqual({ statusCode: 503, body: { error: 'temporarily unable to queue' } });
    failing = false;
    attempts.push([]);
    const second = await receiveErpWebhook(request(body, { id: 'msg_retry' }), deps);
    expect(second.statusCode).toBe(202);
    expect(attempts.map((keys) => [...keys].sort())).toEqual([
      ['msg_retry:0', 'msg_retry:1'],
      ['msg_retry:0', 'msg_retry:1'],
    ]);
  });

  it('answers 503 when the dead-letter queue fails, rather than losing a rejected change', async () => {
    const { deps } = intake({
      deadLetters: { park: async () => Promise.reject(new TransientError('queue_unavailable', 'down')) },
    });
    const response = await receiveErpWebhook(request({ changes: [change('C-1', 'not an email')] }), deps);
    expect(response.statusCode).toBe(503);
  });

  it('sends one customer’s changes in batch order, even when another customer’s are slower', async () => {
    const sent: string[] = [];
    const { deps } = intake({
      queue: {
        enqueue: async (queuedChange: IdentityChange) => {
          await sleep(queuedChange.email?.startsWith('slow') ? 20 : 1);
          sent.push(`${queuedChange.externalId}:${queuedChange.email}`);
        },
      },
    });
    const body = {
      changes: [
        change('C-1', 'slow1@example.com'),
        change('C-2', 'fast1@example.com'),
        change('C-1', 'fast2@example.com'),
        change('C-2', 'slow2@example.com'),
        change('C-1', 'fast3@example.com'),
      ],
    };
    expect((await receiveErpWebhook(request(body), deps)).statusCode).toBe(202);
    expect(sent.filter((entry) => entry.startsWith('C-1:'))).toEqual([
      'C-1:slow1@example.com',
      'C-1:fast2@example.com',
      'C-1:fast3@example.com',
    ]);
    expect(sent.filter((entry) => entry.startsWith('C-2:'))).toEqual([
      'C-2:fast1@example.com',
      'C-2:slow2@example.com',
    ]);
    // Customers go in parallel: C-2's first change does not wait for C-1's slow one.
    expect(sent[0]).toBe('C-2:fast1@example.com');
  });

  it('parks a rejected change under its own key, naming its customer, with the change as sent', async () => {
    const { deps, parked, queued } = intake();
    const bad = { externalId: 'C-9', phoneNumber: 'n/a', occurredAt: '2026-05-01T11:00:00Z', id: 'erp-9' };
    await receiveErpWebhook(
      request({ changes: [change('C-1', 'a@example.com'), bad] }, { id: 'msg_p' }),
      deps,
    );
    expect(queued.map((queuedChange) => queuedChange.sourceEventId)).toEqual(['msg_p:0']);
    expect(parked).toEqual([
      {
        reason: 'invalid_change',
        detail: expect.stringMatching(/^\/phoneNumber: is not a valid phone number/),
        tenant: 'acme',
        source: 'erp',
        sourceEventId: 'msg_p:1',
        externalId: 'C-9',
        payload: JSON.stringify(bad),
        context: {
          webhookId: 'msg_p',
          index: 1,
          errors: [expect.objectContaining({ path: '/phoneNumber' })],
        },
        parkedAt: NOW.toISOString(),
      },
    ]);
  });

  it('parks a rejected change that has no usable externalId without naming a customer', async () => {
    const { deps, parked } = intake();
    await receiveErpWebhook(request({ changes: [{ externalId: 42, email: 'a@example.com' }] }), deps);
    expect(parked).toHaveLength(1);
    expect(parked[0]).not.toHaveProperty('externalId');
  });
});
