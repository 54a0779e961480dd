import { randomUUID } from 'node:crypto';

export interface ErrorSource {
  pointer?: string;
  parameter?: string;
}

interface ErrorExtras {
  source?: ErrorSource;
  meta?: Record<string, unknown>;
  /** Response headers that belong to the error, e.g. Retry-After or Allow. */
  headers?: Record<string, string>;
}

/** A JSON:API error answer. Validation throws it; the server renders it with `toDocument()`. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly title: string;
  readonly detail: string;
  readonly extras: ErrorExtras;

  constructor(status: number, code: string, title: string, detail: string, extras: ErrorExtras = {}) {
    super(detail);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.title = title;
    this.detail = detail;
    this.extras = extras;
  }

  /** Klaviyo's error document: the spec's fields plus `status` and `meta`, which real answers carry. */
  toDocument() {
    const { source, meta } = this.extras;
    const error = {
      id: randomUUID(),
      status: this.status,
      code: this.code,
      title: this.title,
      detail: this.detail,
    };
    return { errors: [{ ...error, ...(source && { source }), ...(meta && { meta }) }] };
  }
}

export const invalidPointer = (pointer: string, detail: string) =>
  new ApiError(400, 'invalid', 'Invalid input.', detail, { source: { pointer } });

export const invalidAttribute = (name: string, detail: string) =>
  invalidPointer(`/data/attributes/${name}`, detail);

export const invalidParameter = (parameter: string, detail: string) =>
  new ApiError(400, 'invalid', 'Invalid input.', detail, { source: { parameter } });

export const notFound = (detail = 'Not found.') => new ApiError(404, 'not_found', 'Not found.', detail);

export const notAuthenticated = () =>
  new ApiError(
    401,
    'not_authenticated',
    'Authentication credentials were not provided.',
    'Missing or invalid private key.',
    {
      source: { pointer: '/data/' },
    },
  );

export const methodNotAllowed = (method: string, allowed: string[]) =>
  new ApiError(405, 'method_not_allowed', 'Method not allowed.', `Method "${method}" not allowed.`, {
    headers: { allow: allowed.join(', ') },
  });

export const internalError = (error: unknown) =>
  new ApiError(
    500,
    'error',
    'A server error occurred.',
    error instanceof Error ? error.message : String(error),
  );

export const duplicateProfile = (duplicateProfileId: string) =>
  new ApiError(
    409,
    'duplicate_profile',
    'Conflict.',
    'A profile already exists with one of these identifiers.',
    {
      source: { pointer: '/data/attributes' },
      meta: { duplicate_profile_id: duplicateProfileId },
    },
  );

/** 429 answer; without `retryAfterSeconds` there is no Retry-After header (only injected faults do that). */
export function throttled(retryAfterSeconds?: number): ApiError {
  if (retryAfterSeconds === undefined) {
    return new ApiError(429, 'throttled', 'Request was throttled.', 'Request was throttled.');
  }
  const detail = `Request was throttled. Expected available in ${retryAfterSeconds} seconds.`;
  return new ApiError(429, 'throttled', 'Request was throttled.', detail, {
    headers: { 'retry-after': String(retryAfterSeconds) },
  });
}
