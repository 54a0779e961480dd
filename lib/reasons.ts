/**
 * Why a change was skipped, retried or parked: one snake_case spelling for the plan, the
 * executor, dead letters (and their `reason` message attribute), the audit trail, logs and the
 * CLI's results. Klaviyo's own error codes come through as `klaviyo_<code>`.
 */
export const Reason = {
  /** Older than the last change applied for the customer. */
  Stale: 'stale',
  /** The profile already has what the change asks for. */
  Unchanged: 'unchanged',
  /** No profile found and the tenant's policy is not to create one. */
  NoProfile: 'no_profile',
  /** No profile found and the change has no email or phone to create one with. */
  NothingToCreate: 'nothing_to_create',
  /** A profile without our external_id (or with it) holds a wanted identifier; the policy parks or skips. */
  DuplicateProfile: 'duplicate_profile',
  /** Another customer's profile holds a wanted identifier. */
  IdentifierHeldByOtherCustomer: 'identifier_held_by_other_customer',
  /** Shopify merged this customer into another and deleted it: its changes are not applied any more. */
  MergedIntoOtherCustomer: 'merged_into_other_customer',
  /** A Shopify customer merge whose status is not `completed` (e.g. `failed`): nothing to carry over. */
  MergeNotCompleted: 'merge_not_completed',
  /** A completed Shopify customer merge whose deleted customer has no Klaviyo profile. */
  NothingToMerge: 'nothing_to_merge',
  /** A signed Shopify delivery (HTTPS or EventBridge) from a shop not in SHOP_TENANTS: nothing applied. */
  UnknownTenant: 'unknown_tenant',
  /** The customer was erased (a compliance request): its changes still queued apply nothing. */
  CustomerErased: 'customer_erased',
  /** A data request with nowhere to deliver the export (EXPORTS_BUCKET unset): replay once it is set. */
  ExportDestinationMissing: 'export_destination_missing',
  /** Klaviyo has not finished a merge yet: retried later. */
  MergePending: 'merge_pending',
  /** A Shopify payload that is no usable customer. */
  InvalidPayload: 'invalid_payload',
  /** An ERP change that breaks the contract. */
  InvalidChange: 'invalid_change',
  /** A signed webhook body over its source's size limit: kept as its hash, length and first bytes. */
  PayloadTooLarge: 'payload_too_large',
  /** A queued message that is no identity change. */
  InvalidMessage: 'invalid_message',
  TenantSecretMissing: 'tenant_secret_missing',
  TenantSecretInvalid: 'tenant_secret_invalid',
  TenantSecretUnreadable: 'tenant_secret_unreadable',
  TenantSecretUnavailable: 'tenant_secret_unavailable',
  /** Klaviyo did not answer at all. */
  KlaviyoUnreachable: 'klaviyo_unreachable',
  /** Still failing for now after the retry schedule's time (parked by the worker), or moved by SQS redrive. */
  RetriesExhausted: 'retries_exhausted',
} as const;

/** Klaviyo's error code (or HTTP status when it gave none), e.g. `klaviyo_invalid`, `klaviyo_403`. */
export type KlaviyoReason = `klaviyo_${string}`;

export type Reason = (typeof Reason)[keyof typeof Reason] | KlaviyoReason;

/** Klaviyo's error codes (or statuses) as reasons: lower-case words and digits. */
const KLAVIYO_REASON = /^klaviyo_[a-z0-9_]+$/;

/** Every reason, spelt as it is written: the fixed ones, then Klaviyo's as their pattern. */
export const REASON_SPELLINGS: readonly string[] = [...Object.values(Reason), 'klaviyo_<code>'];

/** Whether `value` is a reason this service writes (one of Reason, or `klaviyo_<code>`). */
export const isReason = (value: string): value is Reason =>
  (Object.values(Reason) as string[]).includes(value) || KLAVIYO_REASON.test(value);
