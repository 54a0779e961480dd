import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, type Dispatcher, request } from 'undici';
import { isTransient } from '../errors.js';
import type { IdentifierField, KlaviyoProfile, KlaviyoProfiles, RequestGate } from '../ports.js';
import { KlaviyoApiError, type KlaviyoErrorDetail, KlaviyoUnreachableError } from './errors.js';
import { defaultRetryPolicy, nextRetryDelayMs, parseRetryAfter, type RetryPolicy } from './retry-policy.js';

export interface KlaviyoClientOptions {
  baseUrl: string;
  apiKey: string;
  revision: string;
  timeoutMs: number;
  retry?: Partial<RetryPolicy>;
  dispatcher?: Dispatcher;
  /** Told of each retry, so callers can log and count them. */
  onRetry?: (info: { method: string; path: string; attempt: number; delayMs: number; error: Error }) => void;
  /**
   * Awaited before each request (retries included), to stay under Klaviyo's rate limits, and told
   * what each answer's RateLimit-* headers say.
   */
  pacer?: RequestGate;
}

const MEDIA_TYPE = 'application/vnd.api+json';
const PROFILE_FIELDS = 'email,phone_number,external_id';
/** Values one lookup may carry: a page holds at most 100 profiles, one per value at most. */
export const MAX_FILTER_VALUES = 100;

/** Shared across clients (one per tenant key) so connections stay alive between invocations. */
const sharedAgent = new Agent({ keepAliveTimeout: 30_000, connections: 16 });

interface ProfileResource {
  id: string;
  attributes?: Partial<Omit<KlaviyoProfile, 'id'>>;
}

const toProfile = (resource: ProfileResource): KlaviyoProfile => ({
  id: resource.id,
  email: resource.attributes?.email ?? null,
  phone_number: resource.attributes?.phone_number ?? null,
  external_id: resource.attributes?.external_id ?? null,
});

/** The rate-limit key of a request: Klaviyo counts each operation apart, e.g. `PATCH /api/profiles/{id}`. */
const endpointOf = (method: string, path: string) =>
  `${method} ${(path.split('?')[0] ?? path).replace(/^\/api\/profiles\/[^/]+$/, '/api/profiles/{id}')}`;

/** Klaviyo filter values are double-quoted strings; escape what would end the quote. */
const quoteFilterValue = (value: string) => `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;

export function createKlaviyoClient(options: KlaviyoClientOptions): KlaviyoProfiles {
  const policy: RetryPolicy = { ...defaultRetryPolicy, ...options.retry };
  const dispatcher = options.dispatcher ?? sharedAgent;
  const baseUrl = options.baseUrl.replace(/\/+$/, '');

  async function send(method: 'GET' | 'POST' | 'PATCH', path: string, body?: unknown) {
    const endpoint = endpointOf(method, path);
    await options.pacer?.wait(endpoint);
    // After the first wait for the pacer: the retry budget is for failures, not for pacing.
    const started = Date.now();
    for (let attempt = 1; ; attempt++) {
      try {
        return await sendOnce(method, path, body);
      } catch (error) {
        if (!isTransient(error)) throw error;
        const retryAfter = error instanceof KlaviyoApiError ? error.retryAfterSeconds : undefined;
        const delayMs = nextRetryDelayMs(policy, attempt, Date.now() - started, retryAfter);
        if (delayMs === undefined) throw error;
        options.onRetry?.({ method, path, attempt, delayMs, error: error as Error });
        await sleep(delayMs);
        await options.pacer?.wait(endpoint);
      }
    }
  }

  async function sendOnce(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; json: unknown }> {
    let response: Dispatcher.ResponseData;
    try {
      response = await request(`${baseUrl}${path}`, {
        method: method as Dispatcher.HttpMethod,
        dispatcher,
        headersTimeout: options.timeoutMs,
        bodyTimeout: options.timeoutMs,
        headers: {
          authorization: `Klaviyo-API-Key ${options.apiKey}`,
          revision: options.revision,
          accept: MEDIA_TYPE,
          ...(body === undefined ? {} : { 'content-type': MEDIA_TYPE }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (error) {
      throw new KlaviyoUnreachableError(method, path.split('?')[0] ?? path, error);
    }
    reportSteadyWindow(method, path, response.headers);
    const text = await response.body.text();
    const json = text ? safeJson(text) : undefined;
    if (response.statusCode >= 200 && response.statusCode < 300) return { status: response.statusCode, json };
    const header = response.headers['retry-after'];
    throw new KlaviyoApiError(
      response.statusCode,
      method,
      path.split('?')[0] ?? path,
      errorsOf(json),
      parseRetryAfter(Array.isArray(header) ? header[0] : header, Date.now()),
    );
  }

  function reportSteadyWindow(method: string, path: string, headers: Dispatcher.ResponseData['headers']) {
    if (!options.pacer?.observe) return;
    const remaining = Number(headers['ratelimit-remaining']);
    const resetSeconds = Number(headers['ratelimit-reset']);
    if (headers['ratelimit-remaining'] === undefined || Number.isNaN(remaining) || Number.isNaN(resetSeconds))
      return;
    options.pacer.observe(endpointOf(method, path), { remaining, resetSeconds });
  }

  /** One request: `equals` for one value, `any` for several; a page holds every match of ≤ 100 values. */
  async function findAmong(field: IdentifierField, values: string[]): Promise<KlaviyoProfile[]> {
    const unique = [...new Set(values)];
    if (unique.length === 0) return [];
    if (unique.length > MAX_FILTER_VALUES) {
      throw new RangeError(`at most ${MAX_FILTER_VALUES} values a lookup, got ${unique.length}`);
    }
    const filter =
      unique.length === 1
        ? `equals(${field},${quoteFilterValue(unique[0] as string)})`
        : `any(${field},[${unique.map(quoteFilterValue).join(',')}])`;
    const query = new URLSearchParams({
      filter,
      'fields[profile]': PROFILE_FIELDS,
      'page[size]': String(MAX_FILTER_VALUES),
    });
    const { json } = await send('GET', `/api/profiles?${query}`);
    return ((json as { data?: ProfileResource[] })?.data ?? []).map(toProfile);
  }

  return {
    findProfiles(field, value) {
      // Klaviyo compares filter strings case-sensitively; an email may be stored either way.
      const values = field === 'email' ? [value, value.toLowerCase()] : [value];
      return findAmong(field, values);
    },

    findProfilesAmong: findAmong,

    async getProfile(id) {
      try {
        const query = new URLSearchParams({ 'fields[profile]': PROFILE_FIELDS });
        const { json } = await send('GET', `/api/profiles/${encodeURIComponent(id)}?${query}`);
        return toProfile((json as { data: ProfileResource }).data);
      } catch (error) {
        if (error instanceof KlaviyoApiError && error.status === 404) return undefined;
        throw error;
      }
    },

    async updateProfile(id, attributes) {
      const { json } = await send('PATCH', `/api/profiles/${encodeURIComponent(id)}`, {
        data: { type: 'profile', id, attributes },
      });
      return toProfile((json as { data: ProfileResource }).data);
    },

    async importProfile(attributes) {
      const { status, json } = await send('POST', '/api/profile-import', {
        data: { type: 'profile', attributes },
      });
      return { profile: toProfile((json as { data: ProfileResource }).data), created: status === 201 };
    },

    async mergeProfiles(destinationId, sourceId) {
      await send('POST', '/api/profile-merge', {
        data: {
          type: 'profile-merge',
          id: destinationId,
          relationships: { profiles: { data: [{ type: 'profile', id: sourceId }] } },
        },
      });
    },
  };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return { errors: [{ detail: text.slice(0, 200) }] };
  }
}

function errorsOf(json: unknown): KlaviyoErrorDetail[] {
  const errors = (json as { errors?: unknown })?.errors;
  return Array.isArray(errors) ? (errors as KlaviyoErrorDetail[]) : [];
}
