import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { PermanentError } from '../errors.js';
import type { Identifiers } from '../identity-change.js';
import { maskEmail, maskPhone } from '../observability/mask.js';

/**
 * How customers' emails and phones are kept at rest: never as they are. What the worker compares
 * (is this the value we last applied?) is a keyed digest; what it must give back later (a blocked
 * change's identifiers, to PATCH a swap) is sealed; what people read (history) is masked.
 *
 * Keys are per tenant, derived with HKDF from the tenant secret's `identifierKey`, or, when the
 * secret has none, from its Klaviyo private key: rotating that key then makes every record's
 * digests unusable (another key id), which costs each customer one lookup at its next change.
 */

/** Keyed digests (HMAC-SHA256, base64url) of a profile's identifiers; null: the profile has none. */
export interface IdentifierDigests {
  email: string | null;
  phone_number: string | null;
}

/** A tenant's keys for identifiers at rest. */
export interface IdentifierKey {
  /** Names the key without revealing it: what another key made is never compared or opened. */
  id: string;
  /** HMAC-SHA256 key of the digests. */
  digestKey: Buffer;
  /** AES-256-GCM key of sealed identifiers. */
  sealKey: Buffer;
}

/** Where the keys come from: the tenant secret's fields (see lib/adapters/tenant-secrets.ts). */
export interface IdentifierKeySource {
  identifierKey?: string;
  klaviyoPrivateKey: string;
}

const SALT = 'klaviyo-identity-sync/identifiers';
const derive = (material: string, info: string, length = 32) =>
  Buffer.from(hkdfSync('sha256', material, SALT, info, length));

/** The tenant's keys: from its identifierKey, else derived from its Klaviyo private key. */
export function identifierKeyOf({ identifierKey, klaviyoPrivateKey }: IdentifierKeySource): IdentifierKey {
  const material = identifierKey ?? `klaviyo-private-key:${klaviyoPrivateKey}`;
  return {
    id: derive(material, 'key-id', 9).toString('base64url'),
    digestKey: derive(material, 'identifier-digest'),
    sealKey: derive(material, 'pending-identifiers-seal'),
  };
}

/** Klaviyo matches emails case-insensitively: a change of case alone is no change, so not another digest. */
const canonical = (field: keyof IdentifierDigests, value: string) =>
  field === 'email' ? value.toLowerCase() : value;

/** The keyed digest of one identifier (the phone in E.164, as normalised at intake); null for none. */
export function digestOf(
  key: IdentifierKey,
  field: keyof IdentifierDigests,
  value: string | null,
): string | null {
  if (value === null || value === '') return null;
  return createHmac('sha256', key.digestKey)
    .update(`${field}:${canonical(field, value)}`)
    .digest('base64url');
}

/** The digests of a profile's (or a change's) email and phone; an absent one counts as none. */
export function digestIdentifiers(
  key: IdentifierKey,
  identifiers: { email?: string | null; phone_number?: string | null },
): IdentifierDigests {
  return {
    email: digestOf(key, 'email', identifiers.email ?? null),
    phone_number: digestOf(key, 'phone_number', identifiers.phone_number ?? null),
  };
}

/** An identifier as the audit trail keeps it: masked for people, its digest to confirm a value against. */
export interface AuditedValue {
  /** Absent when only the digest was known (a profile planned from the record). */
  masked?: string;
  digest: string;
}

/** The audit trail's form of an identifier: external_id kept (the customer's id), email and phone masked and digested. */
export function auditedValue(
  key: IdentifierKey,
  field: string,
  value: string | null | undefined,
): AuditedValue | string | null | undefined {
  if (value == null || (field !== 'email' && field !== 'phone_number')) return value;
  const masked = field === 'email' ? maskEmail(value) : maskPhone(value);
  return { masked: masked as string, digest: digestOf(key, field, value) as string };
}

/** The AAD of a customer's sealed identifiers: its state item's partition key. */
export const customerRecordKey = (tenant: string, externalId: string) => `customer#${tenant}#${externalId}`;

/** Sealed identifiers that cannot be opened: tampered with, or sealed for another customer or tenant. */
export class SealedIdentifiersError extends PermanentError {
  constructor(message: string) {
    super('sealed_identifiers_unreadable', message);
  }
}

const SEALED_VERSION = 'v1';
/** A shortened GCM tag would be easier to forge: only the full 16 bytes are accepted. */
const TAG_BYTES = 16;

/**
 * Identifiers sealed with AES-256-GCM (random 96-bit IV) to one customer's record (`aad`, see
 * customerRecordKey): `v1.<key id>.<iv>.<ciphertext>.<tag>`, base64url parts.
 */
export function sealIdentifiers(key: IdentifierKey, identifiers: Identifiers, aad: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key.sealKey, iv);
  cipher.setAAD(Buffer.from(aad));
  const ciphertext = Buffer.concat([cipher.update(JSON.stringify(identifiers), 'utf8'), cipher.final()]);
  return [SEALED_VERSION, key.id, iv, ciphertext, cipher.getAuthTag()]
    .map((part) => (typeof part === 'string' ? part : part.toString('base64url')))
    .join('.');
}

/** The identifiers `sealed` holds; SealedIdentifiersError when it was altered or sealed for another record or key. */
export function openIdentifiers(key: IdentifierKey, sealed: string, aad: string): Identifiers {
  const [version, keyId, iv, ciphertext, tag, ...rest] = sealed.split('.');
  if (version !== SEALED_VERSION || !iv || !ciphertext || !tag || rest.length > 0) {
    throw new SealedIdentifiersError('sealed identifiers are malformed');
  }
  if (keyId !== key.id) throw new SealedIdentifiersError('sealed identifiers were sealed with another key');
  try {
    const decipher = createDecipheriv('aes-256-gcm', key.sealKey, Buffer.from(iv, 'base64url'), {
      authTagLength: TAG_BYTES,
    });
    decipher.setAAD(Buffer.from(aad));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    const plain = Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]);
    return JSON.parse(plain.toString('utf8')) as Identifiers;
  } catch {
    throw new SealedIdentifiersError('sealed identifiers failed authentication: altered, or not this record');
  }
}
