import { isTransient } from '../errors.js';
import { refusal, type WebhookResponse } from '../http.js';
import { isIdentityChange, type QueuedChange } from '../identity-change.js';
import type { Telemetry } from '../observability/telemetry.js';
import type { SeenBodies } from '../ports.js';

/** Why a signed body that came before under another delivery id is not taken again. */
export const REPLAY_REASON = 'replay: the same signed body came under another delivery id within a day';

/**
 * Whether a replay of this change could do harm: only a change ordered by an unsigned time. One
 * ordered by its signed time (Shopify's `updated_at`) comes back stale or as a no-op at the
 * worker's staleness guard, and costs no claim (a DynamoDB write) per delivery.
 */
export const replayCouldHarm = (queued: QueuedChange) =>
  isIdentityChange(queued) && queued.occurredAtUnsigned === true;

/**
 * Claims a signed body's digest under this delivery's id, before queueing: the sender's retry of
 * it (same id) passes again, so a failure after the claim loses nothing; only another delivery id
 * with these bytes is a replay. Undefined when the body may be queued, else the answer.
 */
export async function refuseReplay(
  check: ReplayCheck,
  { deliveryId, receivedAt }: { deliveryId: string; receivedAt: Date },
  facts: Record<string, unknown>,
  { log, count }: Telemetry,
): Promise<WebhookResponse | undefined> {
  let first: boolean;
  try {
    first = await check.seenBodies.claim(check.key, deliveryId, receivedAt);
  } catch (error) {
    log.error('Webhook not checked for a replay: seen bodies unavailable', {
      ...facts,
      error: error as Error,
    });
    return refusal(isTransient(error) ? 503 : 500, 'temporarily unable to queue');
  }
  if (first) return undefined;
  count('WebhookIgnored');
  log.warn('Webhook ignored: a replay', { ...facts, replayKey: check.key });
  return { statusCode: 200, body: { status: 'ignored', reason: REPLAY_REASON } };
}

/** Where a signed body's replays are told apart (SeenBodies), and the body's key there. */
export interface ReplayCheck {
  seenBodies: SeenBodies;
  key: string;
}
