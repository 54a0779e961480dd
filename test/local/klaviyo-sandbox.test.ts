import { once } from 'node:events';
import { connect } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  type KlaviyoSandbox,
  type KlaviyoSandboxOptions,
  SANDBOX_API_KEY,
  startKlaviyoSandbox,
} from '../../local/klaviyo-sandbox.js';

const REVISION = '2026-07-15';
const START = Date.parse('2026-08-03T12:00:00.250Z');

interface ErrorObject {
  id: string;
  status: number;
  code: string;
  title: string;
  detail: string;
  source?: { pointer?: string; parameter?: string };
  meta?: { duplicate_profile_id?: string };
}

interface Resource {
  type: string;
  id: string;
  attributes: Record<string, unknown>;
  links: { self: string };
}

interface Answer {
  status: number;
  headers: Headers;
  body: { data?: unknown; links?: Record<string, string | null>; errors?: ErrorObject[] } | undefined;
}

interface CallOptions {
  method?: string;
  body?: unknown;
  /** Overrides the default headers; undefined removes one. */
  headers?: Record<string, string | undefined>;
}

/** A started sandbox plus the fake clock that drives it. */
function useSandbox(options: KlaviyoSandboxOptions = {}) {
  const env = { sandbox: undefined as unknown as KlaviyoSandbox, now: START };
  beforeAll(async () => {
    env.sandbox = await startKlaviyoSandbox({ ...options, clock: () => env.now });
  });
  afterAll(() => env.sandbox.stop());
  beforeEach(() => {
    env.sandbox.reset();
    env.now = START;
  });
  return env;
}

async function call(sandbox: KlaviyoSandbox, path: string, options: CallOptions = {}): Promise<Answer> {
  const { method = 'GET', body } = options;
  const headers: Record<string, string | undefined> = {
    authorization: `Klaviyo-API-Key ${SANDBOX_API_KEY}`,
    revision: REVISION,
    accept: 'application/vnd.api+json',
    ...(body !== undefined && { 'content-type': 'application/vnd.api+json' }),
    ...options.headers,
  };
  const res = await fetch(`${sandbox.url}${path}`, {
    method,
    headers: Object.fromEntries(
      Object.entries(headers).filter((entry): entry is [string, string] => !!entry[1]),
    ),
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
}

const one = (answer: Answer) => answer.body?.data as Resource;
const many = (answer: Answer) => answer.body?.data as Resource[];
const ids = (answer: Answer) => many(answer).map((resource) => resource.id);
const firstError = (answer: Answer) => answer.body?.errors?.[0];
const profilesPath = (filter: string) => `/api/profiles?filter=${encodeURIComponent(filter)}`;
const patchBody = (id: string, attributes: Record<string, unknown>) => ({
  data: { type: 'profile', id, attributes },
});
const importBody = (attributes: Record<string, unknown>, id?: string) => ({
  data: { type: 'profile', ...(id && { id }), attributes },
});
const mergeBody = (destinationId: string, ...sourceIds: string[]) => ({
  data: {
    type: 'profile-merge',
    id: destinationId,
    relationships: { profiles: { data: sourceIds.map((id) => ({ type: 'profile', id })) } },
  },
});
const SOURCES_POINTER = '/data/relationships/profiles/data';

describe('Klaviyo sandbox API', () => {
  const env = useSandbox();
  const api = (path: string, options?: CallOptions) => call(env.sandbox, path, options);

  describe('authentication and revision', () => {
    it('answers 401 not_authenticated without an Authorization header', async () => {
      const answer = await api('/api/profiles', { headers: { authorization: undefined } });
      expect(answer.status).toBe(401);
      expect(answer.headers.get('content-type')).toBe('application/vnd.api+json');
      expect(answer.body).toEqual({
        errors: [
          {
            id: expect.any(String),
            status: 401,
            code: 'not_authenticated',
            title: 'Authentication credentials were not provided.',
            detail: 'Missing or invalid private key.',
            source: { pointer: '/data/' },
          },
        ],
      });
    });

    it.each([
      ['an unknown private key', 'Klaviyo-API-Key pk_not_a_real_key'],
      ['a public key (site id)', 'Klaviyo-API-Key AbC123'],
      ['a Bearer token', `Bearer ${SANDBOX_API_KEY}`],
      ['a lowercase scheme', `klaviyo-api-key ${SANDBOX_API_KEY}`],
    ])('answers 401 for %s', async (_label, authorization) => {
      const answer = await api('/api/profiles', { headers: { authorization } });
      expect(answer.status).toBe(401);
      expect(firstError(answer)?.code).toBe('not_authenticated');
    });

    it('answers 400 invalid on the revision parameter when the header is missing', async () => {
      const answer = await api('/api/profiles', { headers: { revision: undefined } });
      expect(answer.status).toBe(400);
      expect(firstError(answer)).toMatchObject({
        status: 400,
        code: 'invalid',
        source: { parameter: 'revision' },
      });
    });

    it.each([
      ['malformed', '2026-7-15'],
      ['retired', '2024-02-15'],
      ['impossible', '2025-02-30'],
      ['in the future (per the clock)', '2026-09-15'],
    ])('rejects a %s revision', async (_label, revision) => {
      const answer = await api('/api/profiles', { headers: { revision } });
      expect(answer.status).toBe(400);
      expect(firstError(answer)?.source).toEqual({ parameter: 'revision' });
    });

    it('accepts the oldest revision without trailing slashes', async () => {
      expect((await api('/api/profiles', { headers: { revision: '2024-10-15' } })).status).toBe(200);
    });
  });

  describe('routing and headers', () => {
    it('answers 404 for a trailing slash and for unknown routes', async () => {
      for (const path of ['/api/profiles/', '/api/profile-import/', '/api/lists']) {
        const answer = await api(path);
        expect(answer.status, path).toBe(404);
        expect(firstError(answer)?.code, path).toBe('not_found');
      }
    });

    it('answers 405 with Allow for a method the route does not have', async () => {
      const { id } = env.sandbox.seedProfile({ email: 'ada@example.com' });
      const answer = await api(`/api/profiles/${id}`, { method: 'DELETE' });
      expect(answer.status).toBe(405);
      expect(answer.headers.get('allow')).toBe('GET, PATCH');
    });

    it('reports the steady window in RateLimit-* headers', async () => {
      const first = await api('/api/profiles');
      const second = await api('/api/profiles');
      expect(first.headers.get('ratelimit-limit')).toBe('750');
      expect(first.headers.get('ratelimit-remaining')).toBe('749');
      expect(second.headers.get('ratelimit-remaining')).toBe('748');
      // The clock is 12:00:00.250, so the minute window ends in 59.75 s.
      expect(first.headers.get('ratelimit-reset')).toBe('60');
    });

    it('refuses query parameters it does not model', async () => {
      const answer = await api('/api/profiles?sort=email');
      expect(answer.status).toBe(400);
      expect(firstError(answer)?.source).toEqual({ parameter: 'sort' });
    });
  });

  describe('GET /api/profiles', () => {
    let ada: string;
    let bob: string;
    let cy: string;
    beforeEach(() => {
      ada = env.sandbox.seedProfile({
        email: 'ada+news@example.com',
        phone_number: '+14155550100',
        external_id: 'shopify:1',
        first_name: 'Ada',
      }).id;
      bob = env.sandbox.seedProfile({
        email: 'bob@example.com',
        phone_number: '+14155550101',
        external_id: 'erp "quoted" \\ id',
      }).id;
      cy = env.sandbox.seedProfile({ email: 'cy@example.com' }).id;
    });

    it('filters by external_id and answers the profile resource shape', async () => {
      const answer = await api(profilesPath('equals(external_id,"shopify:1")'));
      expect(answer.status).toBe(200);
      expect(answer.headers.get('content-type')).toBe('application/vnd.api+json');
      expect(answer.body).toEqual({
        data: [
          {
            type: 'profile',
            id: ada,
            attributes: {
              email: 'ada+news@example.com',
              phone_number: '+14155550100',
              external_id: 'shopify:1',
              first_name: 'Ada',
              last_name: null,
              organization: null,
              locale: null,
              title: null,
              image: null,
              created: '2026-08-03T12:00:00.250000+00:00',
              updated: '2026-08-03T12:00:00.250000+00:00',
              last_event_date: null,
              location: expect.objectContaining({ city: null, country: null, zip: null }),
              properties: {},
            },
            links: { self: `${env.sandbox.url}/api/profiles/${ada}` },
          },
        ],
        links: { self: expect.stringContaining('/api/profiles?filter='), next: null, prev: null },
      });
    });

    it('filters by an email containing + and by an E.164 phone when they are URI-encoded', async () => {
      expect(ids(await api(profilesPath('equals(email,"ada+news@example.com")')))).toEqual([ada]);
      expect(ids(await api(profilesPath('equals(phone_number,"+14155550101")')))).toEqual([bob]);
    });

    it('decodes an unencoded + as a space, as the real API does, so the filter matches nothing', async () => {
      const answer = await api('/api/profiles?filter=equals(phone_number,"+14155550100")');
      expect(answer.status).toBe(200);
      expect(many(answer)).toEqual([]);
    });

    it('reads escaped quotes and backslashes, and single-quoted strings', async () => {
      expect(ids(await api(profilesPath('equals(external_id,"erp \\"quoted\\" \\\\ id")')))).toEqual([bob]);
      expect(ids(await api(profilesPath("equals(email,'cy@example.com')")))).toEqual([cy]);
    });

    it('supports any(...) and and(...)', async () => {
      expect(ids(await api(profilesPath('any(email,["cy@example.com","ada+news@example.com"])')))).toEqual([
        ada,
        cy,
      ]);
      const both = 'and(equals(email,"bob@example.com"),equals(phone_number,"+14155550101"))';
      expect(ids(await api(profilesPath(both)))).toEqual([bob]);
      const crossed = 'and(equals(email,"bob@example.com"),equals(phone_number,"+14155550100"))';
      expect(ids(await api(profilesPath(crossed)))).toEqual([]);
    });

    it.each([
      ['an unterminated string', 'equals(email,"ada@example.com'],
      ['an unsupported field', 'equals(first_name,"Ada")'],
      ['an unsupported operator', 'contains(email,"ada")'],
      ['an unquoted value', 'equals(email,ada@example.com)'],
      ['trailing garbage', 'equals(id,"x"))'],
    ])('answers 400 on the filter parameter for %s', async (_label, filter) => {
      const answer = await api(profilesPath(filter));
      expect(answer.status).toBe(400);
      expect(firstError(answer)).toMatchObject({ code: 'invalid', source: { parameter: 'filter' } });
    });

    it('pages with page[size] and follows links.next', async () => {
      const first = await api('/api/profiles?page[size]=2');
      expect(ids(first)).toEqual([ada, bob]);
      const next = first.body?.links?.next;
      expect(next).toEqual(expect.stringContaining(env.sandbox.url));
      const second = await api(String(next).slice(env.sandbox.url.length));
      expect(ids(second)).toEqual([cy]);
      expect(second.body?.links).toMatchObject({ next: null, prev: expect.any(String) });
    });

    it.each(['0', '101', 'ten'])('answers 400 for page[size]=%s', async (size) => {
      const answer = await api(`/api/profiles?page[size]=${size}`);
      expect(answer.status).toBe(400);
      expect(firstError(answer)?.source).toEqual({ parameter: 'page[size]' });
    });

    it('returns only the attributes named in fields[profile]', async () => {
      const answer = await api(`${profilesPath(`equals(id,"${ada}")`)}&fields[profile]=email,external_id`);
      expect(many(answer)[0]?.attributes).toEqual({
        email: 'ada+news@example.com',
        external_id: 'shopify:1',
      });
    });
  });

  describe('GET /api/profiles/{id}', () => {
    it('answers the profile, or 404 for an unknown id', async () => {
      const { id } = env.sandbox.seedProfile({ external_id: 'x-1' });
      const found = await api(`/api/profiles/${id}`);
      expect(found.status).toBe(200);
      expect(one(found)).toMatchObject({ type: 'profile', id, attributes: { external_id: 'x-1' } });
      const missing = await api('/api/profiles/01ZZZZZZZZZZZZZZZZZZZZZZZZ');
      expect(missing.status).toBe(404);
      expect(firstError(missing)?.code).toBe('not_found');
    });
  });

  describe('PATCH /api/profiles/{id}', () => {
    it('sets present attributes, clears nulls, leaves absent ones untouched and bumps updated', async () => {
      const seeded = env.sandbox.seedProfile({
        email: 'old@example.com',
        phone_number: '+14155550100',
        first_name: 'Ada',
        properties: { tier: 'gold', vip: true },
      });
      env.now += 5_000;
      const sent = patchBody(seeded.id, {
        email: 'new@example.com',
        phone_number: null,
        properties: { tier: 'platinum' },
      });
      const answer = await api(`/api/profiles/${seeded.id}`, { method: 'PATCH', body: sent });

      expect(answer.status).toBe(200);
      expect(one(answer).attributes).toMatchObject({
        email: 'new@example.com',
        phone_number: null,
        first_name: 'Ada',
        properties: { tier: 'platinum', vip: true },
        created: '2026-08-03T12:00:00.250000+00:00',
        updated: '2026-08-03T12:00:05.250000+00:00',
      });
      expect(env.sandbox.getProfile(seeded.id)).toMatchObject({
        email: 'new@example.com',
        phone_number: null,
      });
      const [recorded] = env.sandbox.requests;
      expect(recorded).toMatchObject({
        method: 'PATCH',
        path: `/api/profiles/${seeded.id}`,
        body: sent,
        status: 200,
      });
    });

    it.each([
      ['email', 'taken@example.com'],
      ['phone_number', '+14155550177'],
      ['external_id', 'erp-77'],
    ])('answers 409 duplicate_profile naming the holder of the %s', async (identifier, value) => {
      const holder = env.sandbox.seedProfile({ [identifier]: value });
      const other = env.sandbox.seedProfile({ email: 'other@example.com' });
      const answer = await api(`/api/profiles/${other.id}`, {
        method: 'PATCH',
        body: patchBody(other.id, { [identifier]: value, first_name: 'Changed' }),
      });
      expect(answer.status).toBe(409);
      expect(answer.body).toEqual({
        errors: [
          {
            id: expect.any(String),
            status: 409,
            code: 'duplicate_profile',
            title: 'Conflict.',
            detail: 'A profile already exists with one of these identifiers.',
            source: { pointer: '/data/attributes' },
            meta: { duplicate_profile_id: holder.id },
          },
        ],
      });
      expect(env.sandbox.getProfile(other.id)?.first_name).toBeNull();
    });

    it('allows setting an identifier the profile already holds', async () => {
      const { id } = env.sandbox.seedProfile({ email: 'same@example.com' });
      const answer = await api(`/api/profiles/${id}`, {
        method: 'PATCH',
        body: patchBody(id, { email: 'same@example.com' }),
      });
      expect(answer.status).toBe(200);
    });

    it.each([
      ['email', 'not-an-email'],
      ['email', 'two@@example.com'],
      ['phone_number', '4155550100'],
      ['phone_number', '+1 415 555 0100'],
      ['phone_number', '+04155550100'],
      ['phone_number', '(415) 555-0100'],
    ])('answers 400 invalid pointing at %s for %j', async (attribute, value) => {
      const { id } = env.sandbox.seedProfile({ external_id: 'v-1' });
      const answer = await api(`/api/profiles/${id}`, {
        method: 'PATCH',
        body: patchBody(id, { [attribute]: value }),
      });
      expect(answer.status).toBe(400);
      expect(firstError(answer)).toMatchObject({
        code: 'invalid',
        source: { pointer: `/data/attributes/${attribute}` },
      });
      expect(env.sandbox.getProfile(id)?.[attribute as 'email']).toBeNull();
    });

    it('answers 404 for an unknown id and 409 when the body id differs from the URL', async () => {
      const { id } = env.sandbox.seedProfile({ external_id: 'p-1' });
      const unknown = '01ZZZZZZZZZZZZZZZZZZZZZZZZ';
      const missing = await api(`/api/profiles/${unknown}`, {
        method: 'PATCH',
        body: patchBody(unknown, {}),
      });
      expect(missing.status).toBe(404);
      const mismatch = await api(`/api/profiles/${id}`, { method: 'PATCH', body: patchBody(unknown, {}) });
      expect(mismatch.status).toBe(409);
      expect(firstError(mismatch)).toMatchObject({ code: 'conflict', source: { pointer: '/data/id' } });
    });

    it('answers 400 for invalid JSON, a wrong data.type, a missing id and an unknown attribute', async () => {
      const { id } = env.sandbox.seedProfile({ external_id: 'p-2' });
      const path = `/api/profiles/${id}`;
      const cases: [unknown, string][] = [
        ['{"data": ', 'parse_error'],
        [{ data: { type: 'profiles', id, attributes: {} } }, '/data/type'],
        [{ data: { type: 'profile', attributes: {} } }, '/data/id'],
        [patchBody(id, { nickname: 'x' }), '/data/attributes/nickname'],
      ];
      for (const [body, expected] of cases) {
        const answer = await api(path, { method: 'PATCH', body });
        expect(answer.status, expected).toBe(400);
        const error = firstError(answer);
        expect(expected === 'parse_error' ? error?.code : error?.source?.pointer).toBe(expected);
      }
    });
  });

  describe('POST /api/profile-import', () => {
    const importProfile = (body: unknown) => api('/api/profile-import', { method: 'POST', body });

    it('creates with 201, then updates the matched profile with 200', async () => {
      const created = await importProfile(importBody({ external_id: 'erp-9', email: 'grace@example.com' }));
      expect(created.status).toBe(201);
      expect(one(created).id).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);

      const updated = await importProfile(importBody({ external_id: 'erp-9', first_name: 'Grace' }));
      expect(updated.status).toBe(200);
      expect(one(updated).id).toBe(one(created).id);
      expect(one(updated).attributes).toMatchObject({ email: 'grace@example.com', first_name: 'Grace' });
      expect(env.sandbox.listProfiles()).toHaveLength(1);
    });

    it('updates by id', async () => {
      const { id } = env.sandbox.seedProfile({ email: 'by.id@example.com' });
      const answer = await importProfile(importBody({ phone_number: '+14155550123' }, id));
      expect(answer.status).toBe(200);
      expect(env.sandbox.getProfile(id)?.phone_number).toBe('+14155550123');
    });

    it('answers 409 when the identifiers match different profiles', async () => {
      env.sandbox.seedProfile({ email: 'a@example.com' });
      const byExternalId = env.sandbox.seedProfile({ external_id: 'erp-b' });
      const answer = await importProfile(importBody({ email: 'a@example.com', external_id: 'erp-b' }));
      expect(answer.status).toBe(409);
      expect(firstError(answer)).toMatchObject({
        code: 'duplicate_profile',
        meta: { duplicate_profile_id: byExternalId.id },
      });
      expect(env.sandbox.listProfiles()).toHaveLength(2);
    });

    it('answers 409 when the id is given with an identifier another profile holds', async () => {
      const holder = env.sandbox.seedProfile({ email: 'held@example.com' });
      const { id } = env.sandbox.seedProfile({ external_id: 'erp-c' });
      const answer = await importProfile(importBody({ email: 'held@example.com' }, id));
      expect(answer.status).toBe(409);
      expect(firstError(answer)?.meta).toEqual({ duplicate_profile_id: holder.id });
    });

    it('answers 400 without any identifier, and validates like PATCH', async () => {
      const anonymous = await importProfile(importBody({ first_name: 'Nobody' }));
      expect(anonymous.status).toBe(400);
      expect(firstError(anonymous)?.source).toEqual({ pointer: '/data/attributes' });
      const badPhone = await importProfile(importBody({ phone_number: '555-0100' }));
      expect(firstError(badPhone)?.source).toEqual({ pointer: '/data/attributes/phone_number' });
      expect(env.sandbox.listProfiles()).toEqual([]);
    });
  });

  describe('POST /api/profiles', () => {
    it('creates with 201 and answers 409 duplicate_profile when an identifier exists', async () => {
      const created = await api('/api/profiles', {
        method: 'POST',
        body: importBody({ email: 'new@example.com' }),
      });
      expect(created.status).toBe(201);
      const again = await api('/api/profiles', {
        method: 'POST',
        body: importBody({ email: 'new@example.com' }),
      });
      expect(again.status).toBe(409);
      expect(firstError(again)?.meta).toEqual({ duplicate_profile_id: one(created).id });
    });
  });

  describe('injected faults', () => {
    it('answers an injected 503 once, then processes normally', async () => {
      env.sandbox.injectFaults({ status: 503 });
      const failed = await api('/api/profiles');
      expect(failed.status).toBe(503);
      expect(firstError(failed)).toMatchObject({ status: 503, code: 'service_unavailable' });
      expect((await api('/api/profiles')).status).toBe(200);
    });

    it('answers an injected 429 with Retry-After', async () => {
      env.sandbox.injectFaults({ status: 429, retryAfterSeconds: 30 });
      const throttled = await api('/api/profiles');
      expect(throttled.status).toBe(429);
      expect(throttled.headers.get('retry-after')).toBe('30');
      expect(firstError(throttled)).toMatchObject({
        code: 'throttled',
        detail: 'Request was throttled. Expected available in 30 seconds.',
      });
      expect((await api('/api/profiles')).status).toBe(200);
    });

    it('applies a fault only to matching method and path, `times` times', async () => {
      const { id } = env.sandbox.seedProfile({ external_id: 'f-1' });
      env.sandbox.injectFaults({ status: 500, method: 'patch', pathPrefix: '/api/profiles/', times: 2 });
      const patch = () =>
        api(`/api/profiles/${id}`, { method: 'PATCH', body: patchBody(id, { first_name: 'F' }) });
      expect((await api(`/api/profiles/${id}`)).status).toBe(200);
      expect([(await patch()).status, (await patch()).status, (await patch()).status]).toEqual([
        500, 500, 200,
      ]);
    });

    it('checks auth before faults, leaving the fault queued', async () => {
      env.sandbox.injectFaults({ status: 502 });
      expect((await api('/api/profiles', { headers: { authorization: undefined } })).status).toBe(401);
      expect((await api('/api/profiles')).status).toBe(502);
    });

    it('delays a request by delayMs, then answers it normally', async () => {
      env.sandbox.injectFaults({ delayMs: 200 });
      const started = performance.now();
      const answer = await api('/api/profiles');
      expect(answer.status).toBe(200);
      expect(performance.now() - started).toBeGreaterThanOrEqual(180);
    });

    it('rejects an invalid fault and queues nothing from a batch that contains one', async () => {
      expect(() => env.sandbox.injectFaults([{ status: 503 }, { status: 418 } as never])).toThrow(
        /status must be/,
      );
      expect((await api('/api/profiles')).status).toBe(200);
    });

    it('clearFaults drops queued faults', async () => {
      env.sandbox.injectFaults({ status: 500, times: 5 });
      env.sandbox.clearFaults();
      expect((await api('/api/profiles')).status).toBe(200);
    });
  });

  describe('request log and in-process controls', () => {
    it('records what was sent, with decoded query and lowercased headers', async () => {
      await api(`${profilesPath('equals(email,"a+b@example.com")')}&page[size]=5`, {
        headers: { 'X-Trace': 't-1' },
      });
      expect(env.sandbox.requests).toEqual([
        {
          method: 'GET',
          path: '/api/profiles',
          query: { filter: 'equals(email,"a+b@example.com")', 'page[size]': '5' },
          url: expect.stringContaining('a%2Bb%40example.com'),
          headers: expect.objectContaining({ revision: REVISION, 'x-trace': 't-1' }),
          body: undefined,
          status: 200,
          receivedAt: START,
        },
      ]);
      env.sandbox.clearRequests();
      expect(env.sandbox.requests).toEqual([]);
    });

    it('records throttled and rejected requests too', async () => {
      env.sandbox.injectFaults({ status: 429 });
      await api('/api/profiles');
      await api('/api/profiles', { headers: { authorization: undefined } });
      expect(env.sandbox.requests.map((request) => request.status)).toEqual([429, 401]);
    });

    it('seeds, finds, lists copies and deletes profiles', () => {
      const seeded = env.sandbox.seedProfile({ email: 'seed@example.com', external_id: 's-1' });
      expect(seeded.id).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);
      expect(env.sandbox.findProfile({ external_id: 's-1' })?.id).toBe(seeded.id);
      expect(env.sandbox.findProfile({ external_id: 's-1', email: 'other@example.com' })).toBeUndefined();
      const [listed] = env.sandbox.listProfiles();
      if (listed) listed.email = 'mutated@example.com';
      expect(env.sandbox.getProfile(seeded.id)?.email).toBe('seed@example.com');
      expect(() => env.sandbox.seedProfile({ email: 'seed@example.com' })).toThrow(/already exists/);
      expect(() => env.sandbox.seedProfile({ phone_number: '12345' })).toThrow(/phone number/);
      expect(env.sandbox.deleteProfile(seeded.id)).toBe(true);
      expect(env.sandbox.getProfile(seeded.id)).toBeUndefined();
    });
  });

  describe('control routes over HTTP', () => {
    const control = async (path: string, method = 'GET', body?: unknown) => {
      const res = await fetch(`${env.sandbox.url}/__sandbox${path}`, {
        method,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : undefined };
    };

    it('seeds, reads, filters and deletes profiles without auth', async () => {
      const seeded = await control('/profiles', 'POST', { email: 'demo@example.com', external_id: 'demo-1' });
      expect(seeded.status).toBe(201);
      const { id } = seeded.body.profile;
      expect(env.sandbox.getProfile(id)?.email).toBe('demo@example.com');
      expect((await control(`/profiles/${id}`)).body.profile).toMatchObject({ id, external_id: 'demo-1' });
      expect((await control('/profiles?external_id=demo-1')).body.profiles).toHaveLength(1);
      expect((await control('/profiles?external_id=nobody')).body.profiles).toHaveLength(0);
      expect((await control('/profiles?first_name=Ada')).status).toBe(400);
      expect((await control(`/profiles/${id}`, 'DELETE')).status).toBe(204);
      expect((await control(`/profiles/${id}`)).status).toBe(404);
    });

    it('validates seeds like the API', async () => {
      await control('/profiles', 'POST', { email: 'dupe@example.com' });
      expect((await control('/profiles', 'POST', { phone_number: 'nope' })).status).toBe(400);
      const duplicate = await control('/profiles', 'POST', { email: 'dupe@example.com' });
      expect(duplicate.status).toBe(409);
      expect(duplicate.body.errors[0].meta.duplicate_profile_id).toEqual(expect.any(String));
    });

    it('injects and clears faults', async () => {
      expect((await control('/faults', 'POST', [{ status: 504, times: 2 }])).status).toBe(204);
      expect((await api('/api/profiles')).status).toBe(504);
      expect((await control('/faults', 'DELETE')).status).toBe(204);
      expect((await api('/api/profiles')).status).toBe(200);
      expect((await control('/faults', 'POST', { status: 200 })).status).toBe(400);
    });

    it('lists and clears API requests (control requests are not recorded) and resets', async () => {
      await api('/api/profiles');
      const listed = await control('/requests');
      expect(listed.body.requests).toEqual([
        expect.objectContaining({ method: 'GET', path: '/api/profiles' }),
      ]);
      expect((await control('/requests', 'DELETE')).status).toBe(204);
      expect(env.sandbox.requests).toEqual([]);

      env.sandbox.seedProfile({ email: 'gone@example.com' });
      expect((await control('/reset', 'POST')).status).toBe(204);
      expect(env.sandbox.listProfiles()).toEqual([]);
    });

    it('answers 404 and 405 for unknown control routes and methods', async () => {
      expect((await control('/nothing')).status).toBe(404);
      expect((await control('/reset')).status).toBe(405);
    });
  });
});

describe('Klaviyo sandbox profile merges', () => {
  // Merges run only when settled, so every test decides when they happen.
  const env = useSandbox({ mergeDelayMs: Number.POSITIVE_INFINITY });
  const api = (path: string, options?: CallOptions) => call(env.sandbox, path, options);
  const merge = (body: unknown, query = '') => api(`/api/profile-merge${query}`, { method: 'POST', body });
  const control = async (path: string, method = 'GET') => {
    const res = await fetch(`${env.sandbox.url}/__sandbox${path}`, { method });
    return { status: res.status, body: await res.json() };
  };

  let destination: string;
  let source: string;
  beforeEach(() => {
    destination = env.sandbox.seedProfile({
      email: 'dest@example.com',
      first_name: 'Dana',
      location: { city: 'Paris' },
      properties: { tier: 'gold', shared: 'from destination' },
    }).id;
    source = env.sandbox.seedProfile({
      email: 'source@example.com',
      phone_number: '+14155550142',
      external_id: 'erp-42',
      first_name: 'Sam',
      last_name: 'Source',
      location: { city: 'Berlin', country: 'DE' },
      properties: { shared: 'from source', orders: 3 },
    }).id;
  });

  it('answers 201 at once and leaves both profiles as they are until the merge is settled', async () => {
    const answer = await merge(mergeBody(destination, source));
    expect(answer.status).toBe(201);
    expect(answer.headers.get('content-type')).toBe('application/vnd.api+json');
    const self = `${env.sandbox.url}/api/profiles/${destination}`;
    expect(answer.body).toEqual({
      data: { type: 'profile', id: destination, links: { self } },
      links: { self },
    });
    expect(env.sandbox.pendingMerges()).toEqual([
      { destinationId: destination, sourceId: source, requestedAt: START },
    ]);
    expect((await api(`/api/profiles/${source}`)).status).toBe(200);
    expect(ids(await api(profilesPath('equals(external_id,"erp-42")')))).toEqual([source]);
    expect(env.sandbox.getProfile(destination)?.external_id).toBeNull();
    expect(env.sandbox.requests[0]).toMatchObject({
      method: 'POST',
      path: '/api/profile-merge',
      status: 201,
    });
  });

  it('on settling, deletes the source and fills the gaps of the destination, which keeps its own values', async () => {
    await merge(mergeBody(destination, source));
    env.now += 7_000;
    expect(env.sandbox.settleMerges()).toBe(1);
    expect(env.sandbox.pendingMerges()).toEqual([]);

    const gone = await api(`/api/profiles/${source}`);
    expect(gone.status).toBe(404);
    expect(firstError(gone)?.code).toBe('not_found');
    expect(ids(await api(profilesPath(`any(id,["${source}","${destination}"])`)))).toEqual([destination]);
    // The source's identifiers now belong to the destination.
    expect(ids(await api(profilesPath('equals(external_id,"erp-42")')))).toEqual([destination]);
    expect(ids(await api(profilesPath('equals(email,"source@example.com")')))).toEqual([]);

    const merged = one(await api(`/api/profiles/${destination}`)).attributes;
    expect(merged).toMatchObject({
      email: 'dest@example.com',
      phone_number: '+14155550142',
      external_id: 'erp-42',
      first_name: 'Dana',
      last_name: 'Source',
      location: expect.objectContaining({ city: 'Paris', country: 'DE' }),
      properties: { tier: 'gold', shared: 'from destination', orders: 3 },
      created: '2026-08-03T12:00:00.250000+00:00',
      updated: '2026-08-03T12:00:07.250000+00:00',
    });
    expect(env.sandbox.listProfiles()).toHaveLength(1);
  });

  it('settles over HTTP and lists pending merges there; reset drops them', async () => {
    await merge(mergeBody(destination, source));
    expect((await control('/merges')).body).toEqual({
      merges: [{ destinationId: destination, sourceId: source, requestedAt: START }],
    });
    expect(await control('/merges/settle', 'POST')).toEqual({ status: 200, body: { settled: 1 } });
    expect(env.sandbox.getProfile(source)).toBeUndefined();
    expect((await control('/merges')).body).toEqual({ merges: [] });

    const other = env.sandbox.seedProfile({ email: 'other@example.com' }).id;
    await merge(mergeBody(destination, other));
    env.sandbox.reset();
    expect(env.sandbox.pendingMerges()).toEqual([]);
    expect(env.sandbox.settleMerges()).toBe(0);
  });

  it('drops a merge whose source disappeared before it ran', async () => {
    await merge(mergeBody(destination, source));
    env.sandbox.deleteProfile(source);
    const before = env.sandbox.getProfile(destination);
    expect(env.sandbox.settleMerges()).toBe(0);
    expect(env.sandbox.getProfile(destination)).toEqual(before);
  });

  it.each([
    ['no source', mergeBody('D'), SOURCES_POINTER],
    ['two sources', mergeBody('D', 'S', 'T'), SOURCES_POINTER],
    [
      'a data type other than profile-merge',
      { data: { ...mergeBody('D', 'S').data, type: 'profile' } },
      '/data/type',
    ],
    ['no destination id', { data: { ...mergeBody('D', 'S').data, id: undefined } }, '/data/id'],
    ['no relationships', { data: { type: 'profile-merge', id: 'D' } }, '/data/relationships'],
    [
      'a source that is not a profile',
      {
        data: {
          type: 'profile-merge',
          id: 'D',
          relationships: { profiles: { data: [{ type: 'list', id: 'S' }] } },
        },
      },
      `${SOURCES_POINTER}/0/type`,
    ],
    ['the destination as its own source', mergeBody('D', 'D'), `${SOURCES_POINTER}/0/id`],
  ])('answers 400 invalid for %s, queuing nothing', async (_label, template, pointer) => {
    // Real ids, so that only the shape of the body is wrong.
    const body = JSON.parse(
      JSON.stringify(template).replaceAll('"D"', `"${destination}"`).replaceAll('"S"', `"${source}"`),
    );
    const answer = await merge(body);
    expect(answer.status).toBe(400);
    expect(firstError(answer)).toMatchObject({ code: 'invalid', source: { pointer } });
    expect(env.sandbox.pendingMerges()).toEqual([]);
  });

  it('answers 404 for an unknown destination or source, queuing nothing', async () => {
    const unknown = '01ZZZZZZZZZZZZZZZZZZZZZZZZ';
    for (const body of [mergeBody(unknown, source), mergeBody(destination, unknown)]) {
      const answer = await merge(body);
      expect(answer.status).toBe(404);
      expect(firstError(answer)).toMatchObject({
        code: 'not_found',
        detail: expect.stringContaining(unknown),
      });
    }
    expect(env.sandbox.pendingMerges()).toEqual([]);
  });

  it('checks auth, revision and method like the other endpoints', async () => {
    const noKey = await api('/api/profile-merge', {
      method: 'POST',
      body: mergeBody(destination, source),
      headers: { authorization: undefined },
    });
    expect(noKey.status).toBe(401);
    const noRevision = await api('/api/profile-merge', {
      method: 'POST',
      body: mergeBody(destination, source),
      headers: { revision: undefined },
    });
    expect(noRevision.status).toBe(400);
    expect(env.sandbox.pendingMerges()).toEqual([]);
    const get = await api('/api/profile-merge');
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('POST');
  });

  it("accepts only 'id' in fields[profile], as the spec does", async () => {
    expect((await merge(mergeBody(destination, source), '?fields[profile]=email')).status).toBe(400);
    expect((await merge(mergeBody(destination, source), '?fields[profile]=id')).status).toBe(201);
  });

  it('has its own default limits, 10/s, apart from the profiles endpoints', async () => {
    const statuses = [];
    for (let i = 0; i < 11; i++) statuses.push((await merge(mergeBody(destination, source))).status);
    expect(statuses).toEqual([...Array(10).fill(201), 429]);
    const profiles = await api('/api/profiles');
    expect(profiles.status).toBe(200);
    expect(profiles.headers.get('ratelimit-limit')).toBe('750');
  });

  it('answers injected faults aimed at it, leaving other endpoints alone', async () => {
    env.sandbox.injectFaults({ status: 503, method: 'POST', pathPrefix: '/api/profile-merge' });
    const imported = await api('/api/profile-import', {
      method: 'POST',
      body: importBody({ email: 'unaffected@example.com' }),
    });
    expect(imported.status).toBe(201);
    const failed = await merge(mergeBody(destination, source));
    expect(failed.status).toBe(503);
    expect(firstError(failed)?.code).toBe('service_unavailable');
    expect(env.sandbox.pendingMerges()).toEqual([]);
    expect((await merge(mergeBody(destination, source))).status).toBe(201);
  });
});

describe('Klaviyo sandbox profile merge timing and limits', () => {
  it('carries out a merge by itself after mergeDelayMs (default 200 ms)', async () => {
    const sandbox = await startKlaviyoSandbox();
    try {
      const destination = sandbox.seedProfile({ email: 'd@example.com' }).id;
      const source = sandbox.seedProfile({ external_id: 's-1' }).id;
      const started = performance.now();
      expect(
        (await call(sandbox, '/api/profile-merge', { method: 'POST', body: mergeBody(destination, source) }))
          .status,
      ).toBe(201);
      expect(sandbox.getProfile(source)).toBeDefined();
      await expect.poll(() => sandbox.getProfile(source), { timeout: 2_000, interval: 10 }).toBeUndefined();
      // Timers may fire a millisecond early; the merge must not have run right away.
      expect(performance.now() - started).toBeGreaterThanOrEqual(190);
      expect(sandbox.getProfile(destination)?.external_id).toBe('s-1');
      expect(sandbox.pendingMerges()).toEqual([]);
    } finally {
      await sandbox.stop();
    }
  });

  it('stop() cancels pending merges', async () => {
    const sandbox = await startKlaviyoSandbox({ mergeDelayMs: 30 });
    const destination = sandbox.seedProfile({ email: 'd@example.com' }).id;
    const source = sandbox.seedProfile({ email: 's@example.com' }).id;
    await call(sandbox, '/api/profile-merge', { method: 'POST', body: mergeBody(destination, source) });
    await sandbox.stop();
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(sandbox.getProfile(source)).toBeDefined();
    expect(sandbox.pendingMerges()).toEqual([]);
  });

  it('rejects a negative mergeDelayMs', async () => {
    await expect(startKlaviyoSandbox({ mergeDelayMs: -1 })).rejects.toThrow(/mergeDelayMs/);
  });

  describe('with low mergeRateLimits', () => {
    const env = useSandbox({
      mergeRateLimits: { burstPerSecond: 2, steadyPerMinute: 3 },
      mergeDelayMs: Number.POSITIVE_INFINITY,
    });
    const merge = async () => {
      const destination = env.sandbox.seedProfile({}).id;
      const source = env.sandbox.seedProfile({}).id;
      return call(env.sandbox, '/api/profile-merge', {
        method: 'POST',
        body: mergeBody(destination, source),
      });
    };

    it('throttles on the burst, then on the steady window, with Retry-After; other endpoints keep their limits', async () => {
      const first = await merge();
      expect(first.status).toBe(201);
      expect(first.headers.get('ratelimit-limit')).toBe('3');
      expect((await merge()).status).toBe(201);
      const burst = await merge();
      expect(burst.status).toBe(429);
      expect(burst.headers.get('retry-after')).toBe('1');
      expect(firstError(burst)?.code).toBe('throttled');
      expect(env.sandbox.pendingMerges()).toHaveLength(2);

      env.now += 1_000;
      expect((await merge()).status).toBe(201);
      const steady = await merge();
      expect(steady.status).toBe(429);
      // 12:00:01.250 → the minute window ends at 12:01:00.000, 58.75 s later.
      expect(steady.headers.get('retry-after')).toBe('59');

      const profiles = await call(env.sandbox, '/api/profiles');
      expect(profiles.status).toBe(200);
      expect(profiles.headers.get('ratelimit-limit')).toBe('750');
    });
  });
});

describe('Klaviyo sandbox rate limits', () => {
  const env = useSandbox({ rateLimits: { burstPerSecond: 3, steadyPerMinute: 100 }, apiKeys: ['pk_other'] });
  const api = (path: string, options: CallOptions = {}) =>
    call(env.sandbox, path, {
      ...options,
      headers: { authorization: 'Klaviyo-API-Key pk_other', ...options.headers },
    });

  it('only accepts the configured keys', async () => {
    const answer = await api('/api/profiles', {
      headers: { authorization: `Klaviyo-API-Key ${SANDBOX_API_KEY}` },
    });
    expect(answer.status).toBe(401);
  });

  it('throttles the 4th request in a second with Retry-After, and passes once the clock moves on', async () => {
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await api('/api/profiles')).status);
    expect(statuses).toEqual([200, 200, 200]);

    const throttled = await api('/api/profiles');
    expect(throttled.status).toBe(429);
    expect(throttled.headers.get('retry-after')).toBe('1');
    expect(throttled.headers.get('ratelimit-limit')).toBeNull();
    expect(firstError(throttled)).toMatchObject({
      status: 429,
      code: 'throttled',
      title: 'Request was throttled.',
      detail: 'Request was throttled. Expected available in 1 seconds.',
    });
    expect(env.sandbox.requests.at(-1)?.status).toBe(429);

    env.now += 1_000;
    expect((await api('/api/profiles')).status).toBe(200);
  });

  it('counts each endpoint separately', async () => {
    for (let i = 0; i < 3; i++) await api('/api/profiles');
    expect((await api('/api/profiles')).status).toBe(429);
    const imported = await api('/api/profile-import', {
      method: 'POST',
      body: importBody({ email: 'own@example.com' }),
    });
    expect(imported.status).toBe(201);
  });

  it('throttles on the steady window until the minute ends', async () => {
    for (let second = 0; second < 34; second++) {
      env.now = START + second * 1_000;
      const perSecond = second === 33 ? 1 : 3; // 33 × 3 + 1 = 100 requests
      for (let i = 0; i < perSecond; i++) expect((await api('/api/profiles')).status).toBe(200);
    }
    const throttled = await api('/api/profiles');
    expect(throttled.status).toBe(429);
    // 12:00:33.250 → the minute window ends at 12:01:00.000, 26.75 s later.
    expect(throttled.headers.get('retry-after')).toBe('27');
    env.now = Date.parse('2026-08-03T12:01:00.000Z');
    const next = await api('/api/profiles');
    expect(next.status).toBe(200);
    expect(next.headers.get('ratelimit-remaining')).toBe('99');
  });
});

describe('Klaviyo sandbox bulk profile import jobs', () => {
  // Jobs run only when settled (or on the clock in the last test), so each test decides when.
  const env = useSandbox({ bulkImportDelayMs: Number.POSITIVE_INFINITY });
  const api = (path: string, options?: CallOptions) => call(env.sandbox, path, options);
  const JOBS = '/api/profile-bulk-import-jobs';
  const jobBody = (profiles: unknown[]) => ({
    data: { type: 'profile-bulk-import-job', attributes: { profiles: { data: profiles } } },
  });
  const start = (profiles: unknown[]) => api(JOBS, { method: 'POST', body: jobBody(profiles) });
  const item = (attributes: Record<string, unknown>, id?: string) => ({
    type: 'profile',
    ...(id && { id }),
    attributes,
  });

  it('accepts a job with 202 as queued, and imports nothing until it runs', async () => {
    const answer = await start([item({ email: 'bulk.new@example.com', external_id: 'b-1' })]);
    expect(answer.status).toBe(202);
    const job = one(answer);
    expect(job).toMatchObject({
      type: 'profile-bulk-import-job',
      attributes: {
        status: 'queued',
        total_count: 1,
        completed_count: 0,
        failed_count: 0,
        created_at: '2026-08-03T12:00:00.250000+00:00',
        completed_at: null,
      },
      links: { self: `${env.sandbox.url}${JOBS}/${job.id}` },
    });
    expect(env.sandbox.findProfile({ external_id: 'b-1' })).toBeUndefined();
    expect(one(await api(`${JOBS}/${job.id}`)).attributes.status).toBe('queued');
  });

  it('on completion creates, updates by id or by identifier, and counts completed + failed = total', async () => {
    const byId = env.sandbox.seedProfile({ email: 'by.id@example.com' });
    const byEmail = env.sandbox.seedProfile({ email: 'by.email@example.com', first_name: 'Kept' });
    const job = one(
      await start([
        item({ external_id: 'b-id' }, byId.id),
        item({ email: 'by.email@example.com', external_id: 'b-email', first_name: null }),
        item({ email: 'created@example.com', phone_number: '+14155550190', external_id: 'b-new' }),
      ]),
    );
    expect(env.sandbox.settleBulkImports()).toBe(1);

    expect(one(await api(`${JOBS}/${job.id}`)).attributes).toMatchObject({
      status: 'complete',
      total_count: 3,
      completed_count: 3,
      failed_count: 0,
      completed_at: expect.any(String),
      started_at: expect.any(String),
    });
    expect(env.sandbox.getProfile(byId.id)?.external_id).toBe('b-id');
    // A null never clears a field in a bulk import.
    expect(env.sandbox.getProfile(byEmail.id)).toMatchObject({ external_id: 'b-email', first_name: 'Kept' });
    const created = env.sandbox.findProfile({ external_id: 'b-new' });
    expect(created).toMatchObject({ email: 'created@example.com', phone_number: '+14155550190' });
    const profiles = await api(`${JOBS}/${job.id}/relationships/profiles`);
    expect(ids(profiles)).toEqual([byId.id, byEmail.id, created?.id]);
    expect(await api(`${JOBS}/${job.id}/import-errors`)).toMatchObject({ status: 200, body: { data: [] } });
  });

  it('reports each profile it could not import, by pointer, with its original payload, paged', async () => {
    const holder = env.sandbox.seedProfile({ external_id: 'taken' });
    const target = env.sandbox.seedProfile({ email: 'target@example.com' });
    const theirs = env.sandbox.seedProfile({ email: 'theirs@example.com', external_id: 'theirs' });
    const profiles = [
      item({ email: 'fine@example.com' }),
      item({ email: 'not-an-email' }),
      item({ external_id: 'taken' }, target.id),
      item({ external_id: 'x' }, '01UNKNOWN'),
      item({ phone_number: '0415 555 0100' }),
      // Matched by email, but bound to another customer: never rebound.
      item({ email: 'theirs@example.com', external_id: 'mine' }),
    ];
    const job = one(await start(profiles));
    env.sandbox.settleBulkImports();

    expect(one(await api(`${JOBS}/${job.id}`)).attributes).toMatchObject({
      total_count: 6,
      completed_count: 1,
      failed_count: 5,
    });
    const first = await api(`${JOBS}/${job.id}/import-errors?page[size]=2`);
    const errors = many(first);
    expect(errors.map((error) => [error.type, error.attributes.code, error.attributes.source])).toEqual([
      ['import-error', 'invalid', { pointer: '/data/attributes/profiles/data/1/attributes/email' }],
      ['import-error', 'duplicate_profile', { pointer: '/data/attributes/profiles/data/2/attributes' }],
    ]);
    expect(errors[1]?.attributes).toMatchObject({
      detail: 'A profile already exists with one of these identifiers.',
      original_payload: profiles[2],
    });
    const next = String(first.body?.links?.next).slice(env.sandbox.url.length);
    const rest = many(await api(next));
    expect(rest.map((error) => [error.attributes.code, error.attributes.source])).toEqual([
      ['not_found', { pointer: '/data/attributes/profiles/data/3/id' }],
      ['invalid', { pointer: '/data/attributes/profiles/data/4/attributes/phone_number' }],
    ]);
    const all = many(await api(`${JOBS}/${job.id}/import-errors?page[size]=100`));
    expect(all).toHaveLength(5);
    expect(all.at(-1)?.attributes).toMatchObject({
      code: 'duplicate_profile',
      source: { pointer: '/data/attributes/profiles/data/5/attributes' },
    });
    expect(env.sandbox.getProfile(theirs.id)?.external_id).toBe('theirs');
    expect(env.sandbox.getProfile(target.id)?.external_id).toBeNull();
    expect(env.sandbox.getProfile(holder.id)?.external_id).toBe('taken');
  });

  it('refuses a job that is not one, that is empty or over 10,000 profiles, or over 5 MB', async () => {
    const notAJob = await api(JOBS, { method: 'POST', body: { data: { type: 'profile', attributes: {} } } });
    expect(notAJob.status).toBe(400);
    expect(firstError(notAJob)?.source).toEqual({ pointer: '/data/type' });
    expect((await start([])).status).toBe(400);
    const tooMany = await start(Array.from({ length: 10_001 }, (_, i) => item({ external_id: `m-${i}` })));
    expect(tooMany.status).toBe(400);
    expect(firstError(tooMany)?.source).toEqual({ pointer: '/data/attributes/profiles/data' });
    const big = 'x'.repeat(90_000);
    const tooLarge = await start(
      Array.from({ length: 60 }, (_, i) => item({ external_id: `l-${i}`, title: big })),
    );
    expect(tooLarge.status).toBe(413);
    expect(env.sandbox.bulkImportJobs()).toEqual([]);
    expect((await api(`${JOBS}/01UNKNOWN`)).status).toBe(404);
  });

  it('settles and lists jobs over HTTP', async () => {
    await start([item({ external_id: 'over-http' })]);
    const control = (path: string, method: string) =>
      fetch(`${env.sandbox.url}/__sandbox${path}`, { method }).then((res) => res.json());
    expect(await control('/bulk-import-jobs/settle', 'POST')).toEqual({ settled: 1 });
    expect(await control('/bulk-import-jobs', 'GET')).toMatchObject({
      jobs: [{ status: 'complete', total: 1, completed: 1, failed: 0 }],
    });
  });

  it('counts each job endpoint apart at 10/s, as Klaviyo does', async () => {
    for (let i = 0; i < 10; i++) expect((await start([item({ external_id: `r-${i}` })])).status).toBe(202);
    expect((await start([item({ external_id: 'r-10' })])).status).toBe(429);
    const [job] = env.sandbox.bulkImportJobs();
    const read = await api(`${JOBS}/${job?.id}`);
    expect(read.status).toBe(200);
    expect(read.headers.get('ratelimit-limit')).toBe('150');
  });
});

describe('Klaviyo sandbox bulk import timing', () => {
  it('moves a job from queued to processing to complete by itself after bulkImportDelayMs', async () => {
    const sandbox = await startKlaviyoSandbox({ bulkImportDelayMs: 100 });
    try {
      const answer = await call(sandbox, '/api/profile-bulk-import-jobs', {
        method: 'POST',
        body: {
          data: {
            type: 'profile-bulk-import-job',
            attributes: { profiles: { data: [{ type: 'profile', attributes: { external_id: 'timed' } }] } },
          },
        },
      });
      const statuses = new Set<string>();
      await expect
        .poll(
          async () => {
            const status = String(
              one(await call(sandbox, `/api/profile-bulk-import-jobs/${one(answer).id}`)).attributes.status,
            );
            statuses.add(status);
            return status;
          },
          { interval: 10 },
        )
        .toBe('complete');
      expect(statuses.has('processing')).toBe(true);
      expect(sandbox.findProfile({ external_id: 'timed' })).toBeDefined();
    } finally {
      await sandbox.stop();
    }
  });
});

describe('Klaviyo sandbox profile deletion (POST /api/data-privacy-deletion-jobs)', () => {
  const env = useSandbox();
  const DELETIONS = '/api/data-privacy-deletion-jobs';
  const deletionBody = (profile: Record<string, unknown>) => ({
    data: {
      type: 'data-privacy-deletion-job',
      attributes: { profile: { data: { type: 'profile', ...profile } } },
    },
  });
  const requestDeletion = (body: unknown, headers?: Record<string, string | undefined>) =>
    call(env.sandbox, DELETIONS, { method: 'POST', body, ...(headers && { headers }) });

  it('deletes the profile named by its id, by its email or by its phone, answering 202 with no body', async () => {
    const byId = env.sandbox.seedProfile({ external_id: 'del-1', email: 'del.one@example.com' });
    env.sandbox.seedProfile({ external_id: 'del-2', email: 'del.two@example.com' });
    env.sandbox.seedProfile({ external_id: 'del-3', phone_number: '+14155550131' });
    const kept = env.sandbox.seedProfile({ external_id: 'kept', email: 'kept@example.com' });

    const answers = [
      await requestDeletion(deletionBody({ id: byId.id, attributes: {} })),
      await requestDeletion(deletionBody({ attributes: { email: 'del.two@example.com' } })),
      await requestDeletion(deletionBody({ attributes: { phone_number: '+14155550131' } })),
    ];
    expect(answers.map(({ status, body }) => [status, body])).toEqual(Array(3).fill([202, undefined]));
    expect(env.sandbox.listProfiles().map((profile) => profile.id)).toEqual([kept.id]);
    // Its identifiers are free again, as after any deletion.
    expect(env.sandbox.seedProfile({ email: 'del.one@example.com' }).email).toBe('del.one@example.com');
  });

  it('accepts a deletion that matches no profile, deleting nothing', async () => {
    const kept = env.sandbox.seedProfile({ external_id: 'kept' });
    expect((await requestDeletion(deletionBody({ id: '01UNKNOWN', attributes: {} }))).status).toBe(202);
    expect(env.sandbox.listProfiles().map((profile) => profile.id)).toEqual([kept.id]);
  });

  it('refuses more than one identifier, or none, or a body that is not a deletion job, deleting nothing', async () => {
    const profile = env.sandbox.seedProfile({ external_id: 'kept', email: 'kept@example.com' });
    const refused = [
      deletionBody({ id: profile.id, attributes: { email: 'kept@example.com' } }),
      deletionBody({ attributes: { email: 'kept@example.com', phone_number: '+14155550132' } }),
      deletionBody({ attributes: {} }),
      deletionBody({ id: profile.id }),
      deletionBody({ attributes: { email: 7 } }),
      { data: { type: 'profile', attributes: { profile: { data: { type: 'profile', id: profile.id } } } } },
      { data: { type: 'data-privacy-deletion-job', attributes: {} } },
      'not json',
    ];
    const answers = [];
    for (const body of refused) {
      answers.push(await requestDeletion(body));
      env.now += 1_000; // refused requests count against the 3/s too
    }
    expect(answers.map((answer) => answer.status)).toEqual(Array(refused.length).fill(400));
    expect(answers.slice(0, 3).map((answer) => firstError(answer)?.source?.pointer)).toEqual(
      Array(3).fill('/data/attributes/profile/data'),
    );
    expect(firstError(answers[0] as Answer)?.detail).toMatch(/Exactly one identifier .* got 2/);
    expect(env.sandbox.getProfile(profile.id)).toBeDefined();
  });

  it('checks auth and revision like the other endpoints, and has its own limits, 3/s', async () => {
    const profile = env.sandbox.seedProfile({ external_id: 'kept' });
    const body = deletionBody({ attributes: { email: 'nobody@example.com' } });
    expect((await requestDeletion(body, { authorization: undefined })).status).toBe(401);
    expect((await requestDeletion(body, { revision: undefined })).status).toBe(400);
    expect((await call(env.sandbox, DELETIONS)).status).toBe(405);
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await requestDeletion(body)).status);
    expect(statuses).toEqual([202, 202, 202, 429]);
    const throttled = await requestDeletion(deletionBody({ id: profile.id, attributes: {} }));
    expect(throttled.headers.get('retry-after')).toBe('1');
    expect(env.sandbox.getProfile(profile.id)).toBeDefined();
    const profiles = await call(env.sandbox, '/api/profiles');
    expect(profiles.headers.get('ratelimit-limit')).toBe('750');
    env.now += 1_000;
    const accepted = await requestDeletion(deletionBody({ id: profile.id, attributes: {} }));
    expect(accepted.headers.get('ratelimit-limit')).toBe('60');
    expect(env.sandbox.getProfile(profile.id)).toBeUndefined();
  });
});

describe('Klaviyo sandbox identifier index', () => {
  const env = useSandbox({ mergeDelayMs: Number.POSITIVE_INFINITY });
  const found = async (field: string, value: string) =>
    ids(await call(env.sandbox, profilesPath(`any(${field},["${value}"])`)));

  it('follows updates, deletes and merges, so lookups by identifier stay right', async () => {
    const kept = env.sandbox.seedProfile({ email: 'index.kept@example.com' });
    const gone = env.sandbox.seedProfile({ email: 'index.gone@example.com', phone_number: '+14155550177' });
    await call(env.sandbox, `/api/profiles/${kept.id}`, {
      method: 'PATCH',
      body: patchBody(kept.id, { email: 'index.new@example.com', external_id: 'index-1' }),
    });
    expect(await found('email', 'index.kept@example.com')).toEqual([]);
    expect(await found('email', 'index.new@example.com')).toEqual([kept.id]);
    expect(await found('external_id', 'index-1')).toEqual([kept.id]);

    await call(env.sandbox, '/api/profile-merge', { method: 'POST', body: mergeBody(kept.id, gone.id) });
    env.sandbox.settleMerges();
    expect(await found('phone_number', '+14155550177')).toEqual([kept.id]);
    expect(await found('email', 'index.gone@example.com')).toEqual([]);
    // The source's email is free again: a new profile may take it.
    expect(env.sandbox.seedProfile({ email: 'index.gone@example.com' }).id).not.toBe(gone.id);

    env.sandbox.deleteProfile(kept.id);
    expect(await found('external_id', 'index-1')).toEqual([]);
    expect(env.sandbox.seedProfile({ external_id: 'index-1' }).external_id).toBe('index-1');
  });
});

describe('Klaviyo sandbox shutdown', () => {
  /** Fails fast instead of waiting for vitest's timeout when stop() hangs. */
  const within = <T>(ms: number, promise: Promise<T>) =>
    Promise.race([
      promise,
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error(`not settled within ${ms} ms`)), ms),
      ),
    ]);

  it('stops promptly while a request is held by an injected delay', async () => {
    const sandbox = await startKlaviyoSandbox();
    sandbox.injectFaults({ delayMs: 60_000 });
    const pending = call(sandbox, '/api/profiles');
    await expect.poll(() => sandbox.requests.length).toBe(1);
    await within(5_000, sandbox.stop());
    await expect(pending).rejects.toThrow();
  });

  it('stops promptly while a client is stalled mid-request', async () => {
    const sandbox = await startKlaviyoSandbox();
    const socket = connect(Number(new URL(sandbox.url).port), '127.0.0.1');
    await once(socket, 'connect');
    const closed = once(socket, 'close');
    socket.write('POST /api/profile-import HTTP/1.1\r\nHost: sandbox\r\nContent-Length: 100\r\n\r\n{');
    await new Promise((resolve) => setTimeout(resolve, 50)); // let the server parse the request head
    await within(5_000, sandbox.stop());
    await within(5_000, closed);
  });
});
