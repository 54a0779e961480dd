import { isTransient } from '../errors.js';
import type { WebhookRequest } from '../http.js';
import type { WebhookSecrets } from '../ports.js';
import type { WebhookSource } from './source.js';

/** Whether a request is signed with its tenant's secret, as the intake (receive.ts) asks it. */
export type Verification = 'signed' | 'invalid_signature' | 'no_webhook_secret';

/**
 * Whether a request that names no tenant is signed with one of `signers`' (cached) secrets:
 * `unavailable` when none matched and a secret could not be read for now. Their number is the
 * configuration's, not the caller's, and their secrets are cached: no Secrets Manager call per request.
 */
export async function signedByAnyOf(
  source: WebhookSource,
  request: WebhookRequest,
  signers: readonly string[],
  secrets: WebhookSecrets,
  now: Date,
): Promise<'signed' | 'unavailable' | 'not_signed'> {
  const outcomes = await Promise.allSettled(
    signers.map(async (signer) =>
      source.isSignedWith(request, source.secretsOf(await secrets.get(signer)), now),
    ),
  );
  if (outcomes.some((outcome) => outcome.status === 'fulfilled' && outcome.value)) return 'signed';
  const unavailable = outcomes.some(
    (outcome) => outcome.status === 'rejected' && isTransient(outcome.reason),
  );
  return unavailable ? 'unavailable' : 'not_signed';
}

/** Tries the cached secrets first, then fresh ones once: a rotation may have added a secret. */
export async function verify(
  source: WebhookSource,
  request: WebhookRequest,
  tenant: string,
  secrets: WebhookSecrets,
  now: Date,
): Promise<Verification> {
  const cached = source.secretsOf(await secrets.get(tenant));
  if (source.isSignedWith(request, cached, now)) return 'signed';
  const fresh = source.secretsOf(await secrets.get(tenant, { fresh: true }));
  if (fresh.length === 0) return 'no_webhook_secret';
  return source.isSignedWith(request, fresh, now) ? 'signed' : 'invalid_signature';
}
