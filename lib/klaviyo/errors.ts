import { IdentitySyncError } from '../errors.js';

export interface KlaviyoErrorDetail {
  status?: number | string;
  code?: string;
  title?: string;
  detail?: string;
  source?: { pointer?: string; parameter?: string };
  meta?: Record<string, unknown>;
}

/**
 * A non-2xx answer from Klaviyo, with what Klaviyo said. 429 and 5xx are transient (retry later),
 * every other 4xx is permanent: sending the same request again gets the same answer.
 */
export class KlaviyoApiError extends IdentitySyncError {
  readonly transient: boolean;
  readonly reason: string;
  readonly code: string | undefined;
  readonly meta: Record<string, unknown> | undefined;
  readonly pointer: string | undefined;

  constructor(
    readonly status: number,
    readonly method: string,
    readonly path: string,
    readonly errors: KlaviyoErrorDetail[],
    readonly retryAfterSeconds?: number,
  ) {
    const first = errors[0];
    super(`Klaviyo answered ${status} to ${method} ${path}: ${first?.detail ?? first?.title ?? 'no detail'}`);
    this.transient = status === 429 || status >= 500;
    this.code = first?.code;
    this.meta = first?.meta;
    this.pointer = first?.source?.pointer ?? first?.source?.parameter;
    this.reason = `klaviyo_${this.code ?? status}`;
  }

  /** The profile that already holds an identifier, on 409 duplicate_profile. */
  get duplicateProfileId(): string | undefined {
    const id = this.meta?.duplicate_profile_id;
    return typeof id === 'string' ? id : undefined;
  }
}

/** No answer at all: connection refused or reset, DNS, or our request timeout. Always transient. */
export class KlaviyoUnreachableError extends IdentitySyncError {
  readonly transient = true;
  readonly reason = 'klaviyo_unreachable';
  constructor(
    readonly method: string,
    readonly path: string,
    cause: unknown,
  ) {
    super(`Klaviyo did not answer ${method} ${path}: ${(cause as Error)?.message ?? cause}`, { cause });
  }
}
