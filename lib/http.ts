/** A webhook request as the core sees it: lower-cased headers and the exact body bytes. */
export interface WebhookRequest {
  headers: Readonly<Record<string, string | undefined>>;
  body: Buffer;
  /** The route's path parameters, e.g. `{tenant}` of `POST /webhooks/erp/{tenant}`. */
  pathParameters?: Readonly<Record<string, string | undefined>>;
}

export interface WebhookResponse {
  statusCode: number;
  body: Record<string, unknown>;
}

/** An answer refusing the request, saying why. */
export const refusal = (statusCode: number, error: string): WebhookResponse => ({
  statusCode,
  body: { error },
});

export function lowerCaseHeaders(headers: Record<string, string | undefined> | null | undefined) {
  const lowered: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(headers ?? {})) lowered[name.toLowerCase()] = value;
  return lowered;
}
