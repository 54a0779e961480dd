import { type Config, TENANT_NAME } from '../config.js';
import { isTransient, PermanentError } from '../errors.js';
import type { WebhookRequest, WebhookResponse } from '../http.js';
import { type IdentityChange, messageGroupOf } from '../identity-change.js';
import type { Telemetry } from '../observability/telemetry.js';
import type { ChangeQueue, Clock, DeadLetters, TenantSecrets } from '../ports.js';
import {
  type ErpReceipt,
  type ErpRefusal,
  type FieldError,
  MAX_BODY_BYTES,
  type RejectedChange,
  readErpRequest,
} from './contract.js';
import { type ReceivedDelivery, type SignatureCheck, verifyStandardWebhook } from './signature.js';

export interface ErpWebhookRequest extends WebhookRequest {
  /** The `{tenant}` path segment. */
  tenant: string | undefined;
}

export interface ErpIntakeDependencies {
  config: Pick<Config, 'defaultPhoneRegion'>;
  secrets: TenantSecrets;
  queue: ChangeQueue;
  deadLetters: DeadLetters;
  telemetry: Telemetry;
  clock: Clock;
}

type Refusal = Exclude<SignatureCheck, { valid: true }>['reason'] | 'unknown_tenant';

const UNAUTHORIZED: Record<Refusal, string> = {
  unknown_tenant: 'unknown tenant',
  missing_headers: 'webhook-id, webhook-timestamp and webhook-signature are required',
  invalid_timestamp: 'webhook-timestamp must be Unix time in seconds',
  timestamp_too_old: 'webhook-timestamp is more than 5 minutes old: sign every attempt anew',
  timestamp_too_new: 'webhook-timestamp is more than 5 minutes ahead of our clock',
  no_match: 'invalid signature',
};

const refuse = (statusCode: number, error: string, errors?: FieldError[]): WebhookResponse => ({
  statusCode,
  body: { error, ...(errors && { errors }) } satisfies ErpRefusal,
});

/**
 * Takes one signed request from an ERP (or its relay) for a tenant: refuses it as a whole when
 * unsigned, too large or not a change at all; otherwise queues each usable change and keeps each
 * unusable one on the dead-letter queue with its reason, answering 202 with one result per change.
 */
export async function receiveErpWebhook(
  request: ErpWebhookRequest,
  deps: ErpIntakeDependencies,
): Promise<WebhookResponse> {
  const { headers, body, tenant } = request;
  const { log, count } = deps.telemetry;
  const delivery: ReceivedDelivery = {
    id: headers['webhook-id'],
    timestamp: headers['webhook-timestamp'],
    signature: headers['webhook-signature'],
    body,
  };
  const webhookId = delivery.id;
  const unauthorized = (reason: Refusal) => {
    count('WebhookRejected');
    log.warn('ERP request refused: not authenticated', { tenant, webhookId, reason });
    return refuse(401, UNAUTHORIZED[reason]);
  };

  // Checked before the body is hashed or parsed: Lambda would take up to 6 MB.
  if (body.length > MAX_BODY_BYTES) {
    count('WebhookRejected');
    log.warn('ERP request refused: body too large', { tenant, webhookId, bytes: body.length });
    return refuse(413, `body larger than ${MAX_BODY_BYTES} bytes`);
  }
  // Refused before Secrets Manager is asked: the name ends a secret id.
  if (!tenant || !TENANT_NAME.test(tenant)) return unauthorized('unknown_tenant');
  if (!webhookId || !delivery.timestamp || !delivery.signature) return unauthorized('missing_headers');

  let check: SignatureCheck | { valid: false; reason: 'unknown_tenant' };
  try {
    check = await verifyForTenant(delivery, tenant, deps);
  } catch (error) {
    // No secret: a tenant that does not exist. The sender cannot fix that by retrying.
    if (error instanceof PermanentError && error.reason === 'tenant_secret_missing') {
      return unauthorized('unknown_tenant');
    }
    log.error('ERP request not verified: tenant secret unavailable', {
      tenant,
      webhookId,
      error: error as Error,
    });
    return refuse(isTransient(error) ? 503 : 500, 'temporarily unable to verify');
  }
  if (!check.valid) return unauthorized(check.reason);

  const receivedAt = deps.clock();
  const read = readErpRequest(body.toString('utf8'), {
    tenant,
    webhookId,
    receivedAt,
    defaultPhoneRegion: deps.config.defaultPhoneRegion,
  });
  if (!read.ok) {
    count('WebhookRejected');
    log.warn('ERP request refused: not a change or a batch', { tenant, webhookId, errors: read.errors });
    return refuse(400, 'not a change or a batch of changes', read.errors);
  }

  const accepted = read.changes.flatMap((item) => ('change' in item ? [item.change] : []));
  const rejected = read.changes.flatMap((item) => ('change' in item ? [] : [item]));
  try {
    await settleAll([
      enqueueInOrder(accepted, deps.queue),
      ...rejected.map((item) => park(item, tenant, webhookId, receivedAt, deps.deadLetters)),
    ]);
  } catch (error) {
    // A retry is safe: what was queued already has the same deduplication ids.
    log.error('ERP changes not queued', { tenant, webhookId, error: error as Error });
    return refuse(isTransient(error) ? 503 : 500, 'temporarily unable to queue');
  }

  if (accepted.length > 0) count('WebhookAccepted', accepted.length);
  if (rejected.length > 0) count('WebhookDeadLettered', rejected.length);
  for (const { result } of rejected) {
    log.warn('ERP change rejected: kept on the dead-letter queue', { tenant, webhookId, ...result });
  }
  log.info('ERP changes received', {
    tenant,
    webhookId,
    accepted: accepted.length,
    rejected: rejected.length,
  });
  return { statusCode: 202, body: { results: read.changes.map((item) => item.result) } satisfies ErpReceipt };
}

/** Tries the cached secrets first, then fresh ones once: a rotation may have added a secret. */
async function verifyForTenant(delivery: ReceivedDelivery, tenant: string, deps: ErpIntakeDependencies) {
  const now = deps.clock();
  const cached = await deps.secrets.get(tenant);
  const check = verifyStandardWebhook(delivery, cached.erpWebhookSecrets, now);
  if (check.valid || check.reason !== 'no_match') return check;
  const { erpWebhookSecrets } = await deps.secrets.get(tenant, { fresh: true });
  if (erpWebhookSecrets.length === 0) return { valid: false, reason: 'unknown_tenant' } as const;
  return verifyStandardWebhook(delivery, erpWebhookSecrets, now);
}

/**
 * SQS FIFO keeps a message group in the order it was sent: one customer's changes go one after
 * another, in the order of the batch, while different customers' go in parallel.
 */
async function enqueueInOrder(changes: IdentityChange[], queue: ChangeQueue) {
  const byCustomer = new Map<string, IdentityChange[]>();
  for (const change of changes) {
    const group = messageGroupOf(change);
    byCustomer.set(group, [...(byCustomer.get(group) ?? []), change]);
  }
  await settleAll(
    [...byCustomer.values()].map(async (customerChanges) => {
      for (const change of customerChanges) await queue.enqueue(change);
    }),
  );
}

function park(
  item: RejectedChange,
  tenant: string,
  webhookId: string,
  receivedAt: Date,
  deadLetters: DeadLetters,
) {
  const { errors, index } = item.result;
  return deadLetters.park({
    reason: 'invalid_change',
    detail: errors.map((error) => `${error.path || '(change)'}: ${error.message}`).join('; '),
    tenant,
    source: 'erp',
    sourceEventId: item.sourceEventId,
    payload: JSON.stringify(item.sent),
    context: { webhookId, index, errors },
    parkedAt: receivedAt.toISOString(),
  });
}

/** Like Promise.all, but answers only when nothing is in flight any more. */
async function settleAll(work: Promise<unknown>[]) {
  const failed = (await Promise.allSettled(work)).find((outcome) => outcome.status === 'rejected');
  if (failed) throw failed.reason;
}
