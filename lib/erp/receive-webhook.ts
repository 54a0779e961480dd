import type { Config } from '../config.js';
import type { WebhookRequest, WebhookResponse } from '../http.js';
import type { Reading, RejectedChange, VerifiedDelivery, WebhookSource } from '../intake/source.js';
import { Reason } from '../reasons.js';
import {
  type AcceptedChange,
  type AcceptedErasure,
  type ErpReceipt,
  type ErpRefusal,
  MAX_BODY_BYTES,
  queuedOf,
  type RejectedChange as RejectedErpChange,
  readErpRequest,
} from './contract.js';
import { type ReceivedDelivery, type SignatureCheck, verifyStandardWebhook } from './signature.js';

type AcceptedItem = AcceptedChange | AcceptedErasure;

type UnsignedReason = Exclude<SignatureCheck, { valid: true }>['reason'];

/** Why a request is not signed whatever the tenant's secret: told apart, to help whoever wires an ERP. */
const UNSIGNED: Record<Exclude<UnsignedReason, 'no_match'>, string> = {
  missing_headers: 'webhook-id, webhook-timestamp and webhook-signature are required',
  invalid_timestamp: 'webhook-timestamp must be Unix time in seconds',
  timestamp_too_old: 'webhook-timestamp is more than 5 minutes old: sign every attempt anew',
  timestamp_too_new: 'webhook-timestamp is more than 5 minutes ahead of our clock',
};

const deliveryOf = ({ headers, body }: WebhookRequest): ReceivedDelivery => ({
  id: headers['webhook-id'],
  timestamp: headers['webhook-timestamp'],
  signature: headers['webhook-signature'],
  body,
});

/**
 * The ERP contract (lib/erp/contract.ts) at `POST /webhooks/erp/{tenant}`: signed with Standard
 * Webhooks, one change or a batch. Each change is queued or, when unusable, kept with its field
 * errors; the answer is 202 with one result per change. A body that is no change or batch at all
 * is refused with 400 and its errors.
 */
export function erpWebhookSource(config: Pick<Config, 'defaultPhoneRegion'>): WebhookSource {
  return {
    name: 'erp',
    maxBodyBytes: MAX_BODY_BYTES,
    tenantOf: (request) => request.pathParameters?.tenant,
    deliveryIdOf: (request) => request.headers['webhook-id'],
    unsignedReason(request, now) {
      // With no secret to match, every check but the signature's own is made.
      const check = verifyStandardWebhook(deliveryOf(request), [], now);
      return check.valid || check.reason === 'no_match' ? undefined : UNSIGNED[check.reason];
    },
    secretsOf: (secret) => secret.erpWebhookSecrets,
    isSignedWith: (request, secrets, now) => verifyStandardWebhook(deliveryOf(request), secrets, now).valid,
    read: (request, delivery) => readErpDelivery(request, delivery, config.defaultPhoneRegion),
  };
}

function readErpDelivery(
  { body }: WebhookRequest,
  { tenant, deliveryId, receivedAt }: VerifiedDelivery,
  defaultPhoneRegion: string,
): Reading {
  const read = readErpRequest(body.toString('utf8'), {
    tenant,
    webhookId: deliveryId,
    receivedAt,
    defaultPhoneRegion,
  });
  if (!read.ok) {
    const answer: WebhookResponse = {
      statusCode: 400,
      body: { error: 'not a change or a batch of changes', errors: read.errors } satisfies ErpRefusal,
    };
    return { kind: 'refused', reason: 'not a change or a batch', answer };
  }
  return {
    kind: 'changes',
    changes: read.changes.flatMap((item) =>
      'result' in item && item.result.status === 'accepted' ? [queuedOf(item as AcceptedItem)] : [],
    ),
    rejected: read.changes.flatMap((item) =>
      item.result.status === 'rejected' ? [rejectedLetter(item as RejectedErpChange, deliveryId)] : [],
    ),
    answer: {
      statusCode: 202,
      body: { results: read.changes.map((item) => item.result) } satisfies ErpReceipt,
    },
  };
}

function rejectedLetter(
  { result, sourceEventId, sent }: RejectedErpChange,
  webhookId: string,
): RejectedChange {
  const { errors, index, externalId } = result;
  return {
    reason: Reason.InvalidChange,
    detail: errors.map((error) => `${error.path || '(change)'}: ${error.message}`).join('; '),
    sourceEventId,
    ...(externalId !== undefined && { externalId }),
    payload: JSON.stringify(sent),
    context: { webhookId, index, errors },
  };
}
