import { createHmac } from 'node:crypto';
import type { TenantPolicies } from '../config.js';
import { queuedChangeOfLetter } from '../dead-letter.js';
import type {
  CustomerDataRequest,
  CustomerRedact,
  IdentityChange,
  QueuedChange,
  ShopRedact,
} from '../identity-change.js';
import { customerOf, isCustomerMerge } from '../identity-change.js';
import type {
  Clock,
  CustomerRecords,
  DeadLetter,
  ErasureRecord,
  ExportDestination,
  HeldRecords,
  KlaviyoProfiles,
  ParkedLetters,
  SyncStateStore,
} from '../ports.js';
import type { IdentifierKey } from './identifier-digest.js';

/**
 * Erasure and export of what the service holds about a customer (Shopify's `customers/redact`,
 * `customers/data_request`, `shop/redact`; an ERP's erasure entry; `identity-sync forget` and
 * `export`). The decisions are the pure functions here; the I/O goes through the ports. What is
 * held: the customer's partition of the state table (state item, audit items), its parked
 * letters on the dead-letter queue, and (by the tenant's policy) its Klaviyo profile.
 */

/**
 * The keyed digest that names an erased customer in its erasure record: HMAC-SHA256 with the
 * tenant's digest key of the tenant and external id. The record then holds no id, yet a queued
 * change of that customer finds it.
 */
export function erasureSubject(key: IdentifierKey, tenant: string, externalId: string): string {
  return createHmac('sha256', key.digestKey)
    .update(`erased-customer:${tenant}#${externalId}`)
    .digest('base64url');
}

/** Every customer a queued message names: its own, and a merge's kept customer too. */
export function customersNamedBy(queued: QueuedChange): string[] {
  if (isCustomerMerge(queued)) return [queued.deletedExternalId, queued.keptExternalId];
  const customer = customerOf(queued);
  return customer === undefined ? [] : [customer];
}

/** `id` as a whole token of a raw payload: a Shopify customer id among other digits is not it. */
const holdsToken = (payload: string, id: string) => {
  let from = payload.indexOf(id);
  const word = /[A-Za-z0-9_-]/;
  while (from >= 0) {
    const before = payload[from - 1] ?? ' ';
    const after = payload[from + id.length] ?? ' ';
    if (!word.test(before) && !word.test(after)) return true;
    from = payload.indexOf(id, from + 1);
  }
  return false;
};

/**
 * Whether a parked letter is about the customer: it names it (`externalId`), the queued message
 * it keeps names it (a merge names two customers), or, for an unusable payload of the tenant, the
 * raw payload holds its id as a whole token.
 */
export const isLetterOfCustomer =
  (tenant: string, externalId: string) =>
  (letter: DeadLetter): boolean => {
    if (letter.tenant !== tenant) return false;
    if (letter.externalId === externalId) return true;
    const queued = queuedChangeOfLetter(letter);
    if (queued) return customersNamedBy(queued).includes(externalId);
    return letter.payload !== undefined && holdsToken(letter.payload, externalId);
  };

/** Whether a parked letter is the tenant's (a shop's erasure drops them all). */
export const isLetterOfTenant =
  (tenant: string) =>
  (letter: DeadLetter): boolean =>
    letter.tenant === tenant;

/**
 * Whether to ask Klaviyo to delete the customer's profile: only when the tenant's policy says so,
 * not in a dry run, and only for a profile we know.
 */
export function klaviyoDeletionOf(
  policies: Pick<TenantPolicies, 'onCustomerRedact' | 'dryRun'>,
  profileId: string | undefined,
): { deleteProfile: string } | { keep: string } {
  if ((policies.onCustomerRedact ?? 'keep-klaviyo') === 'keep-klaviyo')
    return { keep: 'the tenant keeps Klaviyo profiles (onCustomerRedact: keep-klaviyo)' };
  if (policies.dryRun) return { keep: 'dry run: Klaviyo is not written' };
  if (!profileId) return { keep: 'no Klaviyo profile known for the customer' };
  return { deleteProfile: profileId };
}

/** What erasure and export need. */
export interface ComplianceDependencies {
  records: CustomerRecords;
  state: Pick<SyncStateStore, 'getState'>;
  letters: ParkedLetters;
  identifierKey: () => Promise<IdentifierKey>;
  klaviyo: () => Promise<KlaviyoProfiles>;
  policies: Pick<TenantPolicies, 'onCustomerRedact' | 'dryRun'>;
  /** Where data exports go; without one, a data request cannot be answered (the caller parks it). */
  exports?: ExportDestination | undefined;
  clock: Clock;
}

/**
 * Erases one customer: the erasure record first (from then on the worker applies none of the
 * customer's changes or merges, wherever they are queued), then the Klaviyo profile when the
 * policy asks (its id is read before the state goes), the state and audit items, and the parked
 * letters about the customer; the record is written again with what was deleted. Safe to repeat.
 */
export async function eraseCustomer(
  request: Pick<CustomerRedact, 'tenant' | 'externalId' | 'source' | 'sourceEventId' | 'requestedAt'>,
  deps: ComplianceDependencies,
): Promise<ErasureRecord> {
  const { tenant, externalId } = request;
  const key = await deps.identifierKey();
  const record: ErasureRecord = {
    tenant,
    scope: 'customer',
    subject: erasureSubject(key, tenant, externalId),
    keyId: key.id,
    source: request.source,
    sourceEventId: request.sourceEventId,
    requestedAt: request.requestedAt,
    erasedAt: deps.clock().toISOString(),
    counts: { stateItems: 0, auditItems: 0, letters: 0, klaviyoDeletions: 0 },
  };
  await deps.records.recordErasure(record);

  const { profileId } = await deps.state.getState(tenant, externalId);
  const deletion = klaviyoDeletionOf(deps.policies, profileId);
  if ('deleteProfile' in deletion) {
    await (await deps.klaviyo()).requestProfileDeletion(deletion.deleteProfile);
    record.counts.klaviyoDeletions = 1;
  }
  const erased = await deps.records.eraseCustomer(tenant, externalId);
  const dropped = await deps.letters.drop(isLetterOfCustomer(tenant, externalId));
  record.counts = { ...record.counts, ...erased, letters: dropped.dropped };
  if (!dropped.complete) record.lettersIncomplete = true;
  record.erasedAt = deps.clock().toISOString();
  await deps.records.recordErasure(record);
  return record;
}

/**
 * Erases everything of a tenant (Shopify's `shop/redact`): every customer's items, its customers'
 * erasure markers, its parked letters; one erasure record for the tenant. Klaviyo is left alone:
 * the merchant's account is the merchant's.
 */
export async function eraseShop(
  request: Pick<ShopRedact, 'tenant' | 'source' | 'sourceEventId' | 'requestedAt'>,
  deps: Pick<ComplianceDependencies, 'records' | 'letters' | 'clock'>,
): Promise<ErasureRecord> {
  const erased = await deps.records.eraseTenant(request.tenant);
  const dropped = await deps.letters.drop(isLetterOfTenant(request.tenant));
  const record: ErasureRecord = {
    tenant: request.tenant,
    scope: 'shop',
    source: request.source,
    sourceEventId: request.sourceEventId,
    requestedAt: request.requestedAt,
    erasedAt: deps.clock().toISOString(),
    counts: { ...erased, letters: dropped.dropped, klaviyoDeletions: 0 },
    ...(!dropped.complete && { lettersIncomplete: true }),
  };
  await deps.records.recordErasure(record);
  return record;
}

/** Everything held about one customer, as held: what a data request is answered with. */
export interface CustomerExport {
  tenant: string;
  externalId: string;
  requestId?: string;
  requestedBy: IdentityChange['source'];
  requestedAt: string;
  exportedAt: string;
  /** The state item as stored: profile id, identifier digests (keyed), times, merged-into. */
  state: Record<string, unknown> | null;
  /** The decisions about the customer, oldest first (emails and phones masked and digested). */
  audit: HeldRecords['audit'];
  /** The letters about the customer parked on the dead-letter queue, as parked. */
  parkedLetters: DeadLetter[];
  /** What the reader should know about what could not be read. */
  notes: string[];
}

const FIFO_NOTE =
  "Only the first parked letter of the customer's message group can be read without removing it; more may wait behind it.";

/** The export of a customer's records and letters (pure). */
export function customerExportOf(
  request: Pick<CustomerDataRequest, 'tenant' | 'externalId' | 'source' | 'requestedAt' | 'requestId'>,
  held: HeldRecords,
  letters: { letters: DeadLetter[]; problem?: string | undefined },
  exportedAt: Date,
): CustomerExport {
  return {
    tenant: request.tenant,
    externalId: request.externalId,
    ...(request.requestId !== undefined && { requestId: request.requestId }),
    requestedBy: request.source,
    requestedAt: request.requestedAt,
    exportedAt: exportedAt.toISOString(),
    state: held.state ?? null,
    audit: held.audit,
    parkedLetters: letters.letters,
    notes: [FIFO_NOTE, ...(letters.problem ? [`Dead-letter queue: ${letters.problem}`] : [])],
  };
}

/** Reads everything held about the customer (never writes): the CLI's `export` prints it. */
export async function readCustomerExport(
  request: Pick<CustomerDataRequest, 'tenant' | 'externalId' | 'source' | 'requestedAt' | 'requestId'>,
  deps: Pick<ComplianceDependencies, 'records' | 'letters' | 'clock'>,
): Promise<CustomerExport> {
  const held = await deps.records.readCustomer(request.tenant, request.externalId);
  const letters = await deps.letters.read(isLetterOfCustomer(request.tenant, request.externalId));
  return customerExportOf(request, held, letters, deps.clock());
}

/**
 * Where an export goes: by tenant and request, never by the customer's id (an object's key is
 * listed and logged more widely than its content).
 */
export const exportKeyOf = (request: Pick<CustomerDataRequest, 'tenant' | 'requestId' | 'sourceEventId'>) =>
  `data-requests/${request.tenant}/${encodeURIComponent(request.requestId ?? request.sourceEventId)}.json`;

/** Answers a data request: the export, delivered to the destination. */
export async function deliverCustomerExport(
  request: CustomerDataRequest,
  deps: Pick<ComplianceDependencies, 'records' | 'letters' | 'clock'>,
  destination: ExportDestination,
): Promise<{ location: string; key: string }> {
  const exported = await readCustomerExport(request, deps);
  const key = exportKeyOf(request);
  const { location } = await destination.put(key, `${JSON.stringify(exported, null, 2)}\n`);
  return { location, key };
}
