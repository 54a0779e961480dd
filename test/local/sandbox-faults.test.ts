import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FaultQueue } from '../../local/klaviyo-sandbox/faults.js';
import { type KlaviyoSandbox, SANDBOX_API_KEY, startKlaviyoSandbox } from '../../local/klaviyo-sandbox.js';

/**
 * The Klaviyo sandbox's fault kinds the fault suite injects: a chance, a time span, and what is
 * lost (a connection reset or a late answer) before or after the request is applied.
 */
let sandbox: KlaviyoSandbox;
beforeAll(async () => {
  sandbox = await startKlaviyoSandbox();
});
afterAll(() => sandbox.stop());
beforeEach(() => sandbox.reset());

/** PATCHes the profile's first name; the answer's status, or the error when there is none. */
async function rename(id: string, name: string): Promise<number | string> {
  try {
    const answer = await fetch(`${sandbox.url}/api/profiles/${id}`, {
      method: 'PATCH',
      headers: {
        authorization: `Klaviyo-API-Key ${SANDBOX_API_KEY}`,
        revision: '2026-07-15',
        'content-type': 'application/vnd.api+json',
      },
      body: JSON.stringify({ data: { type: 'profile', id, attributes: { first_name: name } } }),
    });
    await answer.arrayBuffer();
    return answer.status;
  } catch (error) {
    return (error as Error).message;
  }
}

describe('connection resets and late answers', () => {
  it('drops the connection before applying the request: nothing changes', async () => {
    const { id } = sandbox.seedProfile({ external_id: 'r-1', first_name: 'Before' });
    sandbox.injectFaults({ reset: true });
    expect(await rename(id, 'After')).toBe('fetch failed');
    expect(sandbox.getProfile(id)?.first_name).toBe('Before');
    expect(sandbox.requests.map((request) => request.fault)).toEqual(['reset']);
  });

  it('drops the connection after applying it: the change holds, the answer is lost', async () => {
    const { id } = sandbox.seedProfile({ external_id: 'r-2', first_name: 'Before' });
    sandbox.injectFaults({ reset: true, afterApplying: true });
    expect(await rename(id, 'After')).toBe('fetch failed');
    expect(sandbox.getProfile(id)?.first_name).toBe('After');
    expect(sandbox.requests.map((request) => request.fault)).toEqual(['reset+applied']);
  });

  it('answers late after applying: the change holds while the answer waits', async () => {
    const { id } = sandbox.seedProfile({ external_id: 'r-3', first_name: 'Before' });
    sandbox.injectFaults({ delayMs: 300, afterApplying: true });
    const started = Date.now();
    const answer = rename(id, 'After');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(sandbox.getProfile(id)?.first_name).toBe('After');
    expect(await answer).toBe(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
  });
});

describe('FaultQueue', () => {
  it('applies a fault with a probability to about that share of requests, until cleared', () => {
    let draws = 0;
    // Alternating draws: 0.1, 0.6, 0.1, 0.6…: a 50% fault hits every other request.
    const faults = new FaultQueue(Date.now, () => (draws++ % 2 === 0 ? 0.1 : 0.6));
    faults.add([{ status: 503, probability: 0.5 }]);
    const hits = Array.from({ length: 100 }, () => faults.take('GET', '/api/profiles')?.status);
    expect(hits.filter((status) => status === 503)).toHaveLength(50);
    faults.clear();
    expect(faults.take('GET', '/api/profiles')).toBeUndefined();
  });

  it('applies a fault for forMs, then no more', () => {
    let now = 1_000;
    const faults = new FaultQueue(() => now);
    faults.add([{ reset: true, forMs: 60_000 }]);
    expect(faults.take('PATCH', '/api/profiles/1')).toMatchObject({ reset: true });
    now += 59_999;
    expect(faults.take('GET', '/api/profiles')).toMatchObject({ reset: true });
    now += 1;
    expect(faults.take('GET', '/api/profiles')).toBeUndefined();
  });

  it.each([
    [{ status: 503, probability: 0 }, 'probability'],
    [{ status: 503, probability: 1.5 }, 'probability'],
    [{ reset: true, status: 503 }, 'reset'],
    [{ reset: 'yes' }, 'reset'],
    [{ status: 503, afterApplying: true }, 'afterApplying'],
    [{ delayMs: 10, forMs: 0 }, 'forMs'],
  ])('refuses %j', (fault, named) => {
    expect(() => new FaultQueue().add([fault])).toThrow(
      expect.objectContaining({ detail: expect.stringContaining(named) }),
    );
  });
});
