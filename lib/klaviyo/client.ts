import type { Agent } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { isTransient } from '../errors.js';
import type {
  IdentifierField,
  KlaviyoBulkImports,
  KlaviyoProfile,
  KlaviyoProfileScan,
  KlaviyoProfiles,
  RequestGate,
  ScannedProfile,
} from '../ports.js';
import { BULK_IMPORT_PATH, bulkImportsOf } from './bulk-import.js';
import { KlaviyoApiError, type KlaviyoErrorDetail, KlaviyoUnreachableError } from './errors.js';
import { DELETION_PATH } from './limits.js';
import { MAX_FILTER_VALUES, pagedLookup } from './lookup.js';
import { defaultRetryPolicy, nextRetryDelayMs, parseRetryAfter, type RetryPolicy } from './retry-policy.js';
import { exchange, type HttpAnswer, type KlaviyoSend } from './transport.js';

export interface KlaviyoClientOptions {
  baseUrl: string;
  apiKey: string;
  revision: string;
  timeoutMs: number;
  retry?: Partial<RetryPolicy>;
  /** The connection pool; by default one kept-alive pool shared by every client of the process. */
  agent?: Agent;
  /** Told of each retry, so callers can log and count them. */
  onRetry?: (info: { method: string; path: string; attempt: number; delayMs: number; error: Error }) => void;
  /** Told of each answer Klaviyo gives (retried ones included), so callers can count requests and 429s. */
  onResponse?: (info: { method: string; path: string; status: number }) => void;
  /**
   * Awaited before each request (retries included), to stay under Klaviyo's rate limits, and told
   * what each answer's RateLimit-* headers say.
   */
  pacer?: RequestGate;
}

const MEDIA_TYPE = 'application/vnd.api+json';
const PROFILE_FIELDS = 'email,phone_number,external_id';
/** What the duplicates finder compares: the identifiers and the names. */
const SCAN_FIELDS = `${PROFILE_FIELDS},first_name,last_name`;

interface ProfileResource {
  id: string;
  attributes?: Partial<Omit<ScannedProfile, 'id'>>;
}

interface ProfileCollection {
  data?: ProfileResource[];
  links?: { next?: string | null };
}

const toProfile = (resource: ProfileResource): KlaviyoProfile => ({
  id: resource.id,
  email: resource.attributes?.email ?? null,
  phone_number: resource.attributes?.phone_number ?? null,
  external_id: resource.attributes?.external_id ?? null,
});

const toScanned = (resource: ProfileResource): ScannedProfile => ({
  ...toProfile(resource),
  first_name: resource.attributes?.first_name ?? null,
  last_name: resource.attributes?.last_name ?? null,
});

/**
 * The cursor `links.next` carries. The next page is asked with our own query and this cursor, so
 * that it goes to our base URL whatever host Klaviyo's link names.
 */
function cursorOf(next: string | null | undefined): string | undefined {
  if (!next) return undefined;
  const cursor = new URL(next).searchParams.get('page[cursor]');
  if (!cursor) throw new Error(`Klaviyo's links.next names no page[cursor]: ${next}`);
  return cursor;
}

/** The rate-limit key of a request: Klaviyo counts each operation apart, e.g. `PATCH /api/profiles/{id}`. */
const endpointOf = (method: string, path: string) =>
  `${method} ${(path.split('?')[0] ?? path)
    .replace(/^\/api\/profiles\/[^/]+$/, '/api/profiles/{id}')
    .replace(new RegExp(`^${BULK_IMPORT_PATH}/[^/]+`), `${BULK_IMPORT_PATH}/{id}`)}`;

/** Klaviyo filter values are double-quoted strings; escape what would end the quote. */
const quoteFilterValue = (value: string) => `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;

export function createKlaviyoClient(
  options: KlaviyoClientOptions,
): KlaviyoProfiles & KlaviyoBulkImports & KlaviyoProfileScan {
  const policy: RetryPolicy = { ...defaultRetryPolicy, ...options.retry };
  const baseUrl = options.baseUrl.replace(/\/+$/, '');

  const send: KlaviyoSend = async (method, path, body) => {
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
  };

  async function sendOnce(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; json: unknown }> {
    let response: HttpAnswer;
    try {
      response = await exchange({
        method,
        url: `${baseUrl}${path}`,
        agent: options.agent,
        timeoutMs: options.timeoutMs,
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
    options.onResponse?.({ method, path, status: response.status });
    reportSteadyWindow(method, path, response.headers);
    const { text } = response;
    const json = text ? safeJson(text) : undefined;
    if (response.status >= 200 && response.status < 300) return { status: response.status, json };
    const header = response.headers['retry-after'];
    throw new KlaviyoApiError(
      response.status,
      method,
      path.split('?')[0] ?? path,
      errorsOf(json),
      parseRetryAfter(Array.isArray(header) ? header[0] : header, Date.now()),
    );
  }

  function reportSteadyWindow(method: string, path: string, headers: HttpAnswer['headers']) {
    if (!options.pacer?.observe) return;
    const remaining = Number(headers['ratelimit-remaining']);
    const resetSeconds = Number(headers['ratelimit-reset']);
    if (headers['ratelimit-remaining'] === undefined || Number.isNaN(remaining) || Number.isNaN(resetSeconds))
      return;
    options.pacer.observe(endpointOf(method, path), { remaining, resetSeconds });
  }

  /** One page of profiles with `fields`, as `query` asks (a filter or a cursor). */
  async function listPage(fields: string, query: Record<string, string>): Promise<ProfileCollection> {
    const search = new URLSearchParams({
      ...query,
      'fields[profile]': fields,
      'page[size]': String(MAX_FILTER_VALUES),
    });
    const { json } = await send('GET', `/api/profiles?${search}`);
    return (json as ProfileCollection | undefined) ?? {};
  }

  /** Every profile whose `field` is one of `values` (emails in either case), 100 values a request. */
  const findAmong = (field: IdentifierField, values: string[]) =>
    pagedLookup(field, values, async (page) =>
      ((await filteredPage(PROFILE_FIELDS, field, page)).data ?? []).map(toProfile),
    );

  /** One request: `equals` for one value, `any` for several; a page holds every match of ≤ 100 values. */
  async function filteredPage(
    fields: string,
    field: IdentifierField,
    values: string[],
  ): Promise<ProfileCollection> {
    const unique = [...new Set(values)];
    if (unique.length === 0) return {};
    if (unique.length > MAX_FILTER_VALUES) {
      throw new RangeError(`at most ${MAX_FILTER_VALUES} values a lookup, got ${unique.length}`);
    }
    const filter =
      unique.length === 1
        ? `equals(${field},${quoteFilterValue(unique[0] as string)})`
        : `any(${field},[${unique.map(quoteFilterValue).join(',')}])`;
    return listPage(fields, { filter });
  }

  return {
    ...bulkImportsOf(send),

    findProfiles: (field, value) => findAmong(field, [value]),
    findProfilesAmong: findAmong,

    async profilePage(cursor) {
      const page = await listPage(SCAN_FIELDS, cursor === undefined ? {} : { 'page[cursor]': cursor });
      const next = cursorOf(page.links?.next);
      return { profiles: (page.data ?? []).map(toScanned), ...(next && { next }) };
    },

    async scanProfilesAmong(field, values) {
      return ((await filteredPage(SCAN_FIELDS, field, values)).data ?? []).map(toScanned);
    },

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

    // A GDPR/CCPA deletion of every profile matching this one identifier: Klaviyo accepts it (202)
    // and deletes asynchronously; it cannot be undone. The spec requires the profile's `attributes`.
    async requestProfileDeletion(profileId) {
      await send('POST', DELETION_PATH, {
        data: {
          type: 'data-privacy-deletion-job',
          attributes: { profile: { data: { type: 'profile', id: profileId, attributes: {} } } },
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
