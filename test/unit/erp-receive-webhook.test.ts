import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it, vi } from 'vitest';
import { MAX_BODY_BYTES } from '../../lib/erp/contract.js';
import { type ErpIntakeDependencies, receiveErpWebhook } from '../../lib/erp/receive-webhook.js';
import { signErpRequest } from '../../lib/erp/sign.js';
import { PermanentError, TransientError } from '../../lib/errors.js';
import type { IdentityChange } from '../../lib/identity-change.js';
import type { DeadLetter, TenantSecret } from '../../lib/ports.js';

/** The intake's decisions around its ports, with in-memory ports: no network. */
const NOW = new Date('2026-05-01T12:00:00Z');
const SECRET = `whsec_${Buffer.from('unit-test-erp-key').toString('base64')}`;
const ROTATED = `whsec_${Buffer.from('unit-test-erp-key-rotated').toString('base64')}`;

const tenantSecret = (erpWebhookSecrets: string[]): TenantSecret => ({
  klaviyoPrivateKey: 'pk_unit',
  shopifyWebhookSecrets: [],
  erpWebhookSecrets,
});

function intake(overrides: Partial<ErpIntakeDependencies> = {}) {
  const queued: IdentityChange[] = [];
  const parked: DeadLetter[] = [];
  const get = vi.fn(async (_tenant: string, _options?: { fresh?: boolean }) => tenantSecret([SECRET]));
  const deps: ErpIntakeDependencies = {
    config: { defaultPhoneRegion: 'US' },
    secrets: { get },
    queue: { enqueue: async (change) => void queued.push(change) },
    deadLetters: { park: async (letter) => void parked.push(letter) },
    telemetry: { log: { debug: vi.fn(), info: vi.fn(), warn: vi.fn(), error: vi.fn() }, count: vi.fn() },
    clock: () => NOW,
    ...overrides,
  };
  return { deps, queued, parked, get };
}

function request(body: unknown, options: { secret?: string; id?: string; now?: Date } = {}) {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  return {
    tenant: 'acme',
    headers: signErpRequest(text, options.secret ?? SECRET, { now: NOW, ...options }),
    body: Buffer.from(text),
  };
}

const change = (externalId: string, email: string) => ({
  externalId,
  email,
  occurredAt: '2026-05-01T11:00:00Z',
});

describe('tenant secrets', () => {
  it('answers 503 when Secrets Manager is unavailable, so the sender retries', async () => {
    const { deps, queued } = intake({
      secrets: { get: async () => Promise.reject(new TransientError('tenant_secret_unavailable', 'down')) },
    });
    expect(await receiveErpWebhook(request(change('C-1', 'a@example.com')), deps)).toEqual({
      statusCode: 503,
      body: { error: 'temporarily unable to verify' },
    });
    expect(queued).toEqual([]);
  });

  it('answers 401 when the tenant has no secret: retrying cannot help', async () => {
    const { deps } = intake({
      secrets: {
        get: async () => Promise.reject(new PermanentError('tenant_secret_missing', 'no such secret')),
      },
    });
    expect((await receiveErpWebhook(request(change('C-1', 'a@example.com')), deps)).statusCode).toBe(401);
  });

  it('answers 500 when the tenant’s secret is malformed: ours to fix, and the retries will then pass', async () => {
    const { deps } = intake({
      secrets: { get: async () => Promise.reject(new PermanentError('tenant_secret_invalid', 'malformed')) },
    });
    expect((await receiveErpWebhook(request(change('C-1', 'a@example.com')), deps)).statusCode).toBe(500);
  });

  it('reads the secret afresh once when the cached one does not match', async () => {
    const { deps, get, queued } = intake();
    get.mockImplementation(async (_tenant, options) =>
      tenantSecret(options?.fresh ? [SECRET, ROTATED] : [SECRET]),
    );
    const response = await receiveErpWebhook(
      request(change('C-1', 'a@example.com'), { secret: ROTATED }),
      deps,
    );
    expect(response.statusCode).toBe(202);
    expect(get.mock.calls).toEqual([['acme'], ['acme', { fresh: true }]]);
    expect(queued).toHaveLength(1);
  });

  it('does not read the secret again for an expired timestamp', async () => {
    const { deps, get } = intake();
    const stale = request(change('C-1', 'a@example.com'), { now: new Date(NOW.getTime() - 301_000) });
    expect((await receiveErpWebhook(stale, deps)).statusCode).toBe(401);
    expect(get).toHaveBeenCalledTimes(1);
  });

  it('reads no secret for a body over the limit or unsigned', async () => {
    const { deps, get } = intake();
    const big = { tenant: 'acme', headers: {}, body: Buffer.alloc(MAX_BODY_BYTES + 1, 0x20) };
    expect((await receiveErpWebhook(big, deps)).statusCode).toBe(413);
    const unsigned = { tenant: 'acme', headers: {}, body: Buffer.from('{}') };
    expect((await receiveErpWebhook(unsigned, deps)).statusCode).toBe(401);
    expect(get).not.toHaveBeenCalled();
  });

  it.each(['', 'a/b', '../demo', 'a b', 'acme%2F..'])(
    'refuses the tenant name %j without asking for its secret',
    async (name) => {
      const { deps, get } = intake();
      const response = await receiveErpWebhook(
        { ...request(change('C-1', 'a@example.com')), tenant: name },
        deps,
      );
      expect(response).toEqual({ statusCode: 401, body: { error: 'unknown tenant' } });
      expect(get).not.toHaveBeenCalled();
    },
  );

  it('takes a body of exactly the limit', async () => {
    const { deps } = intake();
    const text = JSON.stringify(change('C-1', 'a@example.com'));
    const exact = request(text.padEnd(MAX_BODY_BYTES, ' '));
    expect((await receiveErpWebhook(exact, deps)).statusCode).toBe(202);
  });
});

describe('queueing', () => {
  it('answers 503 when the queue fails, and a redelivery queues under the same keys', async () => {
    const attempts: string[][] = [];
    let failing = true;
    const { deps } = intake({
      queue: {
        enqueue: async (queuedChange) => {
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
        enqueue: async (queuedChange) => {
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

  it('parks a rejected change under its own key, with the change as sent', async () => {
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
});
