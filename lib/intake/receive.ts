import { TENANT_NAME } from '../config.js';
import { isTransient, PermanentError } from '../errors.js';
import { refusal, type WebhookRequest, type WebhookResponse } from '../http.js';
import { customerOf, isCustomerMerge, kindOf, type QueuedChange } from '../identity-change.js';
import type { Telemetry } from '../observability/telemetry.js';
import type { ChangeQueue, Clock, DeadLetters, SeenBodies, WebhookSecrets } from '../ports.js';
import { Reason } from '../reasons.js';
import { enqueueInOrder, settleAll } from './enqueue.js';
import { contentIdOf, letterWithPayload } from './letters.js';
import { type ReplayCheck, refuseReplay, replayCouldHarm } from './replay.js';
import type { VerifiedDelivery, WebhookSource } from './source.js';
import { signedByAnyOf, type Verification, verify } from './verify.js';

export interface IntakeDependencies {
  /** Only the tenants' webhook secrets: an intake never holds a Klaviyo key. */
  secrets: WebhookSecrets;
  queue: ChangeQueue;
  deadLetters: DeadLetters;
  telemetry: Telemetry;
  clock: Clock;
  /** Signed bodies seen lately: a source with `replayKeyOf` has its replays told by it. */
  seenBodies?: SeenBodies;
}

/** An intake ready to take requests: a source wired to its dependencies (lib/composition.ts). */
export type WebhookIntake = (request: WebhookRequest) => Promise<WebhookResponse>;

/**
 * The one answer to every request that fails authentication once it looks signed: an unknown
 * tenant, a tenant without a secret (or without one for this source), a wrong signature. Told
 * apart, they would tell an unauthenticated caller which tenants exist; the log tells them apart.
 */
export const NOT_AUTHENTICATED: WebhookResponse = { statusCode: 401, body: { error: 'invalid signature' } };

const tooLarge = (source: Pick<WebhookSource, 'maxBodyBytes'>) =>
  `body larger than ${source.maxBodyBytes} bytes`;

/**
 * Takes one webhook request of `source`: size, signature shape, tenant, signature (cached secret,
 * then a fresh one), then what the body asks for: changes are queued, and what cannot be used is
 * kept on the dead-letter queue. It never calls Klaviyo, so senders get their answer at once.
 *
 * Answers: 401 unsigned or not authenticated; 413 too large and unsigned; 503 (500) when a secret,
 * the queue or the dead-letter queue is unavailable (broken): the sender retries. A signed body
 * that cannot be used (too large, unusable) is kept and answered 200: a retry would carry the
 * same bytes, and a sender that keeps failing may give the subscription up (Shopify deletes it).
 */
export async function receiveWebhook(
  source: WebhookSource,
  request: WebhookRequest,
  deps: IntakeDependencies,
): Promise<WebhookResponse> {
  const { log, count } = deps.telemetry;
  const now = deps.clock();
  const bytes = request.body.length;
  const refuse = (answer: WebhookResponse, why: string, facts: Record<string, unknown>) => {
    count('WebhookRejected');
    log.warn(`Webhook refused: ${why}`, { source: source.name, ...facts });
    return answer;
  };

  const unsigned = source.unsignedReason(request, now);
  if (unsigned) {
    // Refused before the body is hashed or a secret read: Lambda would take up to 6 MB.
    if (bytes > source.maxBodyBytes) {
      return refuse(refusal(413, tooLarge(source)), 'too large', { bytes, unsigned });
    }
    return refuse(refusal(401, unsigned), 'not signed', { unsigned });
  }
  const tenant = source.tenantOf(request);
  const deliveryId = source.deliveryIdOf(request) ?? contentIdOf(request.body);
  // The tenant's name ends a secret id: a name that cannot be one is refused without asking.
  if (!tenant || !TENANT_NAME.test(tenant)) {
    return takeUnknownTenant(source, request, { tenant, deliveryId, now }, deps, refuse);
  }
  const facts = { source: source.name, tenant, deliveryId };

  let verification: Verification;
  try {
    verification = await verify(source, request, tenant, deps.secrets, now);
  } catch (error) {
    if (error instanceof PermanentError && error.reason === Reason.TenantSecretMissing) {
      return refuse(NOT_AUTHENTICATED, 'not authenticated', { ...facts, why: Reason.TenantSecretMissing });
    }
    // Without the secret a good delivery cannot be told from a forged one: the sender retries.
    log.error('Webhook not verified: tenant secret unavailable', { ...facts, error: error as Error });
    return refusal(isTransient(error) ? 503 : 500, 'temporarily unable to verify');
  }
  if (verification !== 'signed') {
    return refuse(NOT_AUTHENTICATED, 'not authenticated', { ...facts, why: verification });
  }

  const replayKey = source.replayKeyOf?.(request);
  const replayCheck =
    deps.seenBodies && replayKey
      ? { seenBodies: deps.seenBodies, key: `${source.name}#${replayKey}` }
      : undefined;
  return takeVerified(source, request, { tenant, deliveryId, receivedAt: now }, deps, replayCheck);
}

/**
 * Takes a delivery once it is known to be authentic and for `tenant`: what the body asks for is
 * queued, and what cannot be used is kept on the dead-letter queue. Sources authenticated by their
 * transport (EventBridge) enter here, past the signature checks. With `replayCheck`, a body whose
 * changes a replay could harm is claimed before queueing (refuseReplay).
 */
export async function takeVerified(
  source: Pick<WebhookSource, 'name' | 'maxBodyBytes' | 'letterContext' | 'read'>,
  request: WebhookRequest,
  { tenant, deliveryId, receivedAt }: Omit<VerifiedDelivery, 'log'>,
  deps: Omit<IntakeDependencies, 'secrets' | 'clock'>,
  replayCheck?: ReplayCheck,
): Promise<WebhookResponse> {
  const { log, count } = deps.telemetry;
  const facts = { source: source.name, tenant, deliveryId };
  const keepBody = (reason: string, detail: string) =>
    keepWhole(source, request, { tenant, deliveryId, receivedAt }, deps, reason, detail);

  try {
    if (request.body.length > source.maxBodyBytes) {
      return await keepBody(Reason.PayloadTooLarge, tooLarge(source));
    }
    const reading = source.read(request, { tenant, deliveryId, receivedAt, log });
    switch (reading.kind) {
      case 'ignored':
        count('WebhookIgnored');
        log.info('Webhook ignored', { ...facts, reason: reading.reason });
        return { statusCode: 200, body: { status: 'ignored', reason: reading.reason } };
      case 'refused':
        count('WebhookRejected');
        log.warn(`Webhook refused: ${reading.reason}`, { ...facts, answer: reading.answer.body });
        return reading.answer;
      case 'unusable':
        return await keepBody(Reason.InvalidPayload, reading.reason);
      case 'changes': {
        const { changes, rejected } = reading;
        if (replayCheck && changes.some(replayCouldHarm)) {
          const refused = await refuseReplay(replayCheck, { deliveryId, receivedAt }, facts, deps.telemetry);
          if (refused) return refused;
        }
        await settleAll([
          enqueueInOrder(changes, deps.queue),
          ...rejected.map(({ payload, ...item }) =>
            deps.deadLetters.park(
              letterWithPayload(
                { ...item, tenant, source: source.name, parkedAt: receivedAt.toISOString() },
                payload,
              ),
            ),
          ),
        ]);
        if (changes.length > 0) count('WebhookAccepted', changes.length);
        if (rejected.length > 0) count('WebhookDeadLettered', rejected.length);
        for (const change of changes) log.info('Identity change queued', queuedFacts(change, facts));
        for (const { sourceEventId, externalId, reason, detail } of rejected) {
          log.warn('Change rejected: kept on the dead-letter queue', {
            ...facts,
            sourceEventId,
            externalId,
            reason,
            detail,
          });
        }
        return reading.answer;
      }
    }
  } catch (error) {
    // A retry is safe: what was queued or kept already has the same deduplication ids.
    log.error('Webhook not queued', { ...facts, error: error as Error });
    return refusal(isTransient(error) ? 503 : 500, 'temporarily unable to queue');
  }
}

/**
 * What an operator needs of a queued change to follow it: which customer, which delivery, what
 * kind; the worker's line says what came of it. Not the change itself: its identifiers and times
 * are the body's, and a log line is billed by the byte (bench/RESULTS.md, log volume).
 */
function queuedFacts(change: QueuedChange, facts: { deliveryId: string }) {
  const kind = kindOf(change);
  return {
    ...facts,
    externalId: customerOf(change),
    ...(change.sourceEventId !== facts.deliveryId && { sourceEventId: change.sourceEventId }),
    ...(kind !== 'identityChange' && { kind }),
    ...(isCustomerMerge(change) && { mergedInto: change.keptExternalId }),
  };
}

/**
 * Keeps the whole body (or, when too large for a letter, its hash, length and first bytes) on the
 * dead-letter queue, answered 200: a retry would carry the same bytes. Throws when it cannot.
 */
async function keepWhole(
  source: Pick<WebhookSource, 'name' | 'letterContext'>,
  request: WebhookRequest,
  { tenant, deliveryId, receivedAt }: { tenant: string | undefined; deliveryId: string; receivedAt: Date },
  deps: Pick<IntakeDependencies, 'deadLetters' | 'telemetry'>,
  reason: string,
  detail: string,
): Promise<WebhookResponse> {
  const letter = {
    reason,
    detail,
    tenant,
    source: source.name,
    sourceEventId: deliveryId,
    context: source.letterContext?.(request),
    parkedAt: receivedAt.toISOString(),
  };
  await deps.deadLetters.park(letterWithPayload(letter, request.body));
  deps.telemetry.count('WebhookDeadLettered');
  deps.telemetry.log.warn('Webhook kept on the dead-letter queue', {
    source: source.name,
    tenant,
    deliveryId,
    reason,
    detail,
  });
  return { statusCode: 200, body: { status: 'dead-lettered', reason: detail } };
}

/**
 * A request that names no tenant of ours (a shop not in SHOP_TENANTS, a malformed name): kept as
 * unknown_tenant and answered 200 when signed by one of the source's known signers, so the sender
 * does not retry and nothing is applied; otherwise refused like a wrong signature.
 */
async function takeUnknownTenant(
  source: WebhookSource,
  request: WebhookRequest,
  { tenant, deliveryId, now }: { tenant: string | undefined; deliveryId: string; now: Date },
  deps: IntakeDependencies,
  refuse: (answer: WebhookResponse, why: string, facts: Record<string, unknown>) => WebhookResponse,
): Promise<WebhookResponse> {
  const signers = source.signersWhenUnknown?.(request) ?? [];
  const signed = await signedByAnyOf(source, request, signers, deps.secrets, now);
  if (signed === 'unavailable') return refusal(503, 'temporarily unable to verify');
  if (signed === 'not_signed') {
    // Cut: the name comes from the request, and a log line is no place for 600 characters of it.
    return refuse(NOT_AUTHENTICATED, 'not authenticated', {
      tenant: tenant?.slice(0, 80),
      why: Reason.UnknownTenant,
    });
  }
  try {
    const delivery = { tenant: undefined, deliveryId, receivedAt: now };
    return await keepWhole(source, request, delivery, deps, Reason.UnknownTenant, 'maps to no tenant');
  } catch (error) {
    deps.telemetry.log.error('Webhook not kept', { source: source.name, deliveryId, error: error as Error });
    return refusal(isTransient(error) ? 503 : 500, 'temporarily unable to queue');
  }
}
