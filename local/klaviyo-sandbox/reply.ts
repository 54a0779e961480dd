import type { ApiError } from './errors.js';

/** What a route answers; the server serialises `body` as JSON. */
export interface Reply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export type ParsedBody = { ok: true; value: unknown } | { ok: false };

/** An empty body parses to `undefined`; invalid JSON is reported rather than thrown. */
export function parseJsonBody(raw: string): ParsedBody {
  if (raw === '') return { ok: true, value: undefined };
  try {
    return { ok: true, value: JSON.parse(raw) };
  } catch {
    return { ok: false };
  }
}

export function errorReply(error: ApiError, headers: Record<string, string> = {}): Reply {
  return { status: error.status, body: error.toDocument(), headers: { ...headers, ...error.extras.headers } };
}
