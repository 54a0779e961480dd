import { Agent, createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createKlaviyoClient, type KlaviyoClientOptions } from '../../lib/klaviyo/client.js';
import { KlaviyoApiError, KlaviyoUnreachableError } from '../../lib/klaviyo/errors.js';
import { limitsOf } from '../../lib/klaviyo/limits.js';
import { freePort } from '../support/ports.js';

/**
 * The HTTP client against a tiny answerer on loopback: what it sends (headers, URLs, bodies) and
 * how it reads what comes back (profiles, errors, retries). Delays are kept to milliseconds.
 */
interface Received {
  method: string;
  /** The request target as sent, still encoded. */
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

interface Answer {
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
}

const PROFILE = {
  type: 'profile',
  id: '01P',
  attributes: { email: 'a@example.com', phone_number: null, external_id: '42' },
};

let server: Server | undefined;
let agent: Agent | undefined;

afterEach(async () => {
  agent?.destroy();
  server?.closeAllConnections();
  await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
  server = agent = undefined;
});

/** Answers requests in turn with `answers` (the last one repeats; 'hang' never answers). */
async function answering(...answers: (Answer | 'hang')[]) {
  const received: Received[] = [];
  server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      received.push({
        method: request.method ?? '',
        url: request.url ?? '',
        headers: request.headers,
        body: Buffer.concat(chunks).toString(),
      });
      const answer = answers[Math.min(received.length, answers.length) - 1];
      if (!answer || answer === 'hang') return;
      const text = typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body ?? '');
      response.writeHead(answer.status, { 'content-type': 'application/vnd.api+json', ...answer.headers });
      response.end(answer.body === undefined ? '' : text);
    });
  });
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { received, baseUrl: `http://127.0.0.1:${port}/` };
}

function clientFor(baseUrl: string, options: Partial<KlaviyoClientOptions> = {}) {
  agent = new Agent({ keepAlive: false });
  return createKlaviyoClient({
    baseUrl,
    apiKey: 'pk_test_key',
    revision: '2026-07-15',
    timeoutMs: 1_000,
    retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 5, budgetMs: 2_000 },
    agent,
    ...options,
  });
}

const errorOf = (promise: Promise<unknown>) =>
  promise.then(
    () => {
      throw new Error('expected a failure');
    },
    (error: unknown) => error,
  );

describe('what the client sends', () => {
  it('sends the key, the revision and the JSON:API media type; a body only with its content type', async () => {
    const { received, baseUrl } = await answering({ status: 200, body: { data: PROFILE } });
    const client = clientFor(baseUrl);
    await client.getProfile('01P');
    await client.updateProfile('01P', { email: 'a@example.com' });
    const [get, patch] = received;
    expect(get?.headers).toMatchObject({
      authorization: 'Klaviyo-API-Key pk_test_key',
      revision: '2026-07-15',
      accept: 'application/vnd.api+json',
    });
    expect(get?.headers['content-type']).toBeUndefined();
    expect(patch?.headers).toMatchObject({
      authorization: 'Klaviyo-API-Key pk_test_key',
      'content-type': 'application/vnd.api+json',
    });
  });

  it('quotes filter values, escaping quotes and backslashes, and URL-encodes the query', async () => {
    const { received, baseUrl } = await answering({ status: 200, body: { data: [] } });
    await clientFor(baseUrl).findProfiles('email', 'o"brien\\x@example.com');
    const url = received[0]?.url ?? '';
    expect(url).not.toMatch(/["\\ ]/);
    const query = new URL(url, 'http://x').searchParams;
    expect(new URL(url, 'http://x').pathname).toBe('/api/profiles');
    expect(query.get('filter')).toBe('equals(email,"o\\"brien\\\\x@example.com")');
    expect(query.get('fields[profile]')).toBe('email,phone_number,external_id');
    expect(query.get('page[size]')).toBe('100');
  });

  it('looks an email up as given and lower-cased in one request, since filters are case-sensitive', async () => {
    const { received, baseUrl } = await answering({ status: 200, body: { data: [] } });
    await clientFor(baseUrl).findProfiles('email', 'Ada@Example.com');
    expect(received).toHaveLength(1);
    const query = new URL(received[0]?.url ?? '', 'http://x').searchParams;
    expect(query.get('filter')).toBe('any(email,["Ada@Example.com","ada@example.com"])');
  });

  it('finds many values with one any() query, and more than a page can answer 100 values a request', async () => {
    const { received, baseUrl } = await answering({ status: 200, body: { data: [PROFILE] } });
    const client = clientFor(baseUrl);
    const found = await client.findProfilesAmong('external_id', ['1', '2', '2', '3']);
    expect(found).toHaveLength(1);
    const filterOf = (index: number) =>
      new URL(received[index]?.url ?? '', 'http://x').searchParams.get('filter') ?? '';
    expect(filterOf(0)).toBe('any(external_id,["1","2","3"])');

    const many = Array.from({ length: 201 }, (_, i) => String(i));
    expect(await client.findProfilesAmong('external_id', many)).toHaveLength(3);
    expect(received).toHaveLength(4);
    expect(filterOf(1)).toBe(
      `any(external_id,[${many
        .slice(0, 100)
        .map((v) => `"${v}"`)
        .join(',')}])`,
    );
    expect(filterOf(2)).toBe(
      `any(external_id,[${many
        .slice(100, 200)
        .map((v) => `"${v}"`)
        .join(',')}])`,
    );
    expect(filterOf(3)).toBe('equals(external_id,"200")');
  });

  it('pages emails with their lower-cased forms, each value once', async () => {
    const { received, baseUrl } = await answering({ status: 200, body: { data: [] } });
    const emails = Array.from({ length: 60 }, (_, i) => `C${i}@Example.com`);
    await clientFor(baseUrl).findProfilesAmong('email', [...emails, 'c0@example.com']);
    const sent = received.map((request) =>
      new URL(request.url, 'http://x').searchParams.get('filter')?.match(/"[^"]*"/g),
    );
    expect(sent.map((values) => values?.length)).toEqual([100, 20]);
    expect(sent[0]?.slice(0, 2)).toEqual(['"C0@Example.com"', '"c0@example.com"']);
  });

  it('encodes a profile id in the path', async () => {
    const { received, baseUrl } = await answering({ status: 200, body: { data: PROFILE } });
    await clientFor(baseUrl).getProfile('a/b c');
    expect(received[0]?.url).toMatch(/^\/api\/profiles\/a%2Fb%20c\?/);
  });

  it('PATCHes, imports and merges with JSON:API documents', async () => {
    const { received, baseUrl } = await answering({ status: 200, body: { data: PROFILE } });
    const client = clientFor(baseUrl);
    await client.updateProfile('01P', { email: null, external_id: '42' });
    await client.importProfile({ external_id: '42', email: 'a@example.com' });
    await client.mergeProfiles('01DEST', '01SRC');
    expect(received.map(({ method, url, body }) => [method, url, JSON.parse(body)])).toEqual([
      [
        'PATCH',
        '/api/profiles/01P',
        { data: { type: 'profile', id: '01P', attributes: { email: null, external_id: '42' } } },
      ],
      [
        'POST',
        '/api/profile-import',
        { data: { type: 'profile', attributes: { external_id: '42', email: 'a@example.com' } } },
      ],
      [
        'POST',
        '/api/profile-merge',
        {
          data: {
            type: 'profile-merge',
            id: '01DEST',
            relationships: { profiles: { data: [{ type: 'profile', id: '01SRC' }] } },
          },
        },
      ],
    ]);
  });

  it('requests a profile deletion by id (a data privacy deletion job), resolving on 202 with no body', async () => {
    const { received, baseUrl } = await answering({ status: 202 });
    const waited: string[] = [];
    const pacer = { wait: async (endpoint: string) => void waited.push(endpoint) };
    await expect(clientFor(baseUrl, { pacer }).requestProfileDeletion('01P')).resolves.toBeUndefined();
    expect(received.map(({ method, url, body }) => [method, url, JSON.parse(body)])).toEqual([
      [
        'POST',
        '/api/data-privacy-deletion-jobs',
        {
          data: {
            type: 'data-privacy-deletion-job',
            attributes: { profile: { data: { type: 'profile', id: '01P', attributes: {} } } },
          },
        },
      ],
    ]);
    // Its own endpoint, with its own limits (3/s, 60/min), for the pacer and the quota.
    expect(waited).toEqual(['POST /api/data-privacy-deletion-jobs']);
    expect(limitsOf(waited[0] as string)).toEqual({ perSecond: 3, perMinute: 60 });
  });

  it('waits for the pacer before each request, retries included, keyed by endpoint', async () => {
    const { baseUrl } = await answering({ status: 503 }, { status: 200, body: { data: PROFILE } });
    const waited: string[] = [];
    const pacer = { wait: async (endpoint: string) => void waited.push(endpoint) };
    await clientFor(baseUrl, { pacer }).getProfile('01P');
    expect(waited).toEqual(['GET /api/profiles/{id}', 'GET /api/profiles/{id}']);
  });

  it("tells the pacer what each answer's RateLimit headers say of the steady window", async () => {
    const { baseUrl } = await answering(
      {
        status: 200,
        headers: { 'ratelimit-remaining': '7', 'ratelimit-reset': '31' },
        body: { data: PROFILE },
      },
      { status: 200, body: { data: PROFILE } },
    );
    const observed: unknown[] = [];
    const pacer = {
      wait: async () => undefined,
      observe: (endpoint: string, report: unknown) => void observed.push({ endpoint, report }),
    };
    const client = clientFor(baseUrl, { pacer });
    await client.updateProfile('01P', { email: 'a@example.com' });
    await client.getProfile('01P');
    expect(observed).toEqual([
      { endpoint: 'PATCH /api/profiles/{id}', report: { remaining: 7, resetSeconds: 31 } },
    ]);
  });

  it('drops a trailing slash of the base URL', async () => {
    const { received, baseUrl } = await answering({ status: 200, body: { data: [] } });
    await clientFor(`${baseUrl}/`).findProfiles('external_id', '42');
    expect(received[0]?.url).toMatch(/^\/api\/profiles\?/);
  });
});

describe('what the client reads', () => {
  it('maps profiles, absent attributes as null', async () => {
    const { baseUrl } = await answering({
      status: 200,
      body: { data: [PROFILE, { type: 'profile', id: '01Q', attributes: { email: 'q@example.com' } }] },
    });
    expect(await clientFor(baseUrl).findProfiles('email', 'x')).toEqual([
      { id: '01P', email: 'a@example.com', phone_number: null, external_id: '42' },
      { id: '01Q', email: 'q@example.com', phone_number: null, external_id: null },
    ]);
  });

  it('answers undefined for an unknown profile (404), and throws other errors of getProfile', async () => {
    const { baseUrl } = await answering(
      { status: 404, body: { errors: [{ code: 'not_found' }] } },
      { status: 403, body: { errors: [{ code: 'permission_denied' }] } },
    );
    const client = clientFor(baseUrl);
    expect(await client.getProfile('01GONE')).toBeUndefined();
    await expect(client.getProfile('01P')).rejects.toMatchObject({ status: 403 });
  });

  it('tells a created profile (201) from an updated one (200) on import', async () => {
    const { baseUrl } = await answering(
      { status: 201, body: { data: PROFILE } },
      { status: 200, body: { data: PROFILE } },
    );
    const client = clientFor(baseUrl);
    expect((await client.importProfile({ email: 'a@example.com' })).created).toBe(true);
    expect((await client.importProfile({ email: 'a@example.com' })).created).toBe(false);
  });
});

describe('errors', () => {
  it("turns a 4xx into a permanent KlaviyoApiError with Klaviyo's code, detail and pointer, not retried", async () => {
    const { received, baseUrl } = await answering({
      status: 400,
      body: {
        errors: [
          {
            status: 400,
            code: 'invalid',
            detail: 'Invalid phone number.',
            source: { pointer: '/data/attributes/phone_number' },
          },
        ],
      },
    });
    const error = await errorOf(clientFor(baseUrl).updateProfile('01P', { phone_number: '555' }));
    expect(error).toBeInstanceOf(KlaviyoApiError);
    expect(error).toMatchObject({
      status: 400,
      transient: false,
      reason: 'klaviyo_invalid',
      code: 'invalid',
      pointer: '/data/attributes/phone_number',
      method: 'PATCH',
      path: '/api/profiles/01P',
    });
    expect((error as Error).message).toContain('Invalid phone number.');
    expect(received).toHaveLength(1);
  });

  it('names the profile holding an identifier on 409 duplicate_profile', async () => {
    const { baseUrl } = await answering({
      status: 409,
      body: { errors: [{ code: 'duplicate_profile', meta: { duplicate_profile_id: '01HOLDER' } }] },
    });
    const error = await errorOf(clientFor(baseUrl).updateProfile('01P', { email: 'taken@example.com' }));
    expect(error).toMatchObject({
      status: 409,
      reason: 'klaviyo_duplicate_profile',
      duplicateProfileId: '01HOLDER',
    });
  });

  it('keeps the start of a body that is not JSON as the detail, and the status as the reason', async () => {
    const { baseUrl } = await answering({ status: 403, body: '<html>Forbidden</html>' });
    const error = await errorOf(clientFor(baseUrl).findProfiles('email', 'x'));
    expect(error).toMatchObject({ status: 403, reason: 'klaviyo_403', transient: false });
    expect((error as Error).message).toContain('<html>Forbidden</html>');
    expect((error as KlaviyoApiError).path).toBe('/api/profiles');
  });

  it('retries 5xx within the attempts, telling onRetry, then throws a transient error', async () => {
    const { received, baseUrl } = await answering({
      status: 503,
      body: { errors: [{ code: 'server_error' }] },
    });
    const retries: number[] = [];
    const error = await errorOf(
      clientFor(baseUrl, { onRetry: ({ attempt }) => void retries.push(attempt) }).findProfiles('email', 'x'),
    );
    expect(error).toMatchObject({ status: 503, transient: true });
    expect(received).toHaveLength(3);
    expect(retries).toEqual([1, 2]);
  });

  it('succeeds when a retry does', async () => {
    const { received, baseUrl } = await answering({ status: 500 }, { status: 200, body: { data: PROFILE } });
    expect(await clientFor(baseUrl).getProfile('01P')).toMatchObject({ id: '01P' });
    expect(received).toHaveLength(2);
  });

  it('honours Retry-After on 429', async () => {
    const { baseUrl } = await answering(
      { status: 429, headers: { 'retry-after': '0.15' }, body: { errors: [{ code: 'throttled' }] } },
      { status: 200, body: { data: PROFILE } },
    );
    const delays: number[] = [];
    const started = Date.now();
    await clientFor(baseUrl, { onRetry: ({ delayMs }) => void delays.push(delayMs) }).getProfile('01P');
    expect(delays).toHaveLength(1);
    expect(delays[0]).toBeGreaterThanOrEqual(150);
    expect(delays[0]).toBeLessThanOrEqual(165);
    expect(Date.now() - started).toBeGreaterThanOrEqual(145);
  });

  it('does not wait past the retry budget: a Retry-After beyond it fails at once', async () => {
    const { received, baseUrl } = await answering({ status: 429, headers: { 'retry-after': '30' } });
    const error = await errorOf(clientFor(baseUrl, { retry: { budgetMs: 1_000 } }).getProfile('01P'));
    expect(error).toMatchObject({ status: 429, transient: true, retryAfterSeconds: 30 });
    expect(received).toHaveLength(1);
  });

  it('raises KlaviyoUnreachableError (transient) when nothing answers, after retrying', async () => {
    const retries: number[] = [];
    const client = clientFor(`http://127.0.0.1:${await freePort()}`, {
      onRetry: ({ attempt }) => void retries.push(attempt),
    });
    const error = await errorOf(client.findProfiles('email', 'x'));
    expect(error).toBeInstanceOf(KlaviyoUnreachableError);
    expect(error).toMatchObject({ transient: true, reason: 'klaviyo_unreachable', path: '/api/profiles' });
    expect(retries).toEqual([1, 2]);
  });

  it('gives up on an answer that does not come within the timeout', async () => {
    const { baseUrl } = await answering('hang');
    const client = clientFor(baseUrl, { timeoutMs: 50, retry: { maxAttempts: 1 } });
    await expect(client.getProfile('01P')).rejects.toBeInstanceOf(KlaviyoUnreachableError);
  });
});
