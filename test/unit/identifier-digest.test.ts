import { describe, expect, it } from 'vitest';
import {
  auditedValue,
  customerRecordKey,
  digestIdentifiers,
  digestOf,
  identifierKeyOf,
  openIdentifiers,
  SealedIdentifiersError,
  sealIdentifiers,
} from '../../lib/privacy/identifier-digest.js';

/** Test keys only: none is a real secret. */
const acme = identifierKeyOf({
  identifierKey: 'acme-identifier-key-for-tests-0000001',
  klaviyoPrivateKey: 'pk_acme',
});
const globex = identifierKeyOf({
  identifierKey: 'globex-identifier-key-for-tests-00001',
  klaviyoPrivateKey: 'pk_globex',
});
const ACME_1001 = customerRecordKey('acme', '1001');

describe('identifier keys', () => {
  it('are derived deterministically, and differ between tenants', () => {
    const again = identifierKeyOf({
      identifierKey: 'acme-identifier-key-for-tests-0000001',
      klaviyoPrivateKey: 'pk_rotated',
    });
    expect(again).toEqual(acme);
    expect(globex.id).not.toBe(acme.id);
    expect(globex.digestKey.equals(acme.digestKey)).toBe(false);
    expect(acme.digestKey.equals(acme.sealKey)).toBe(false);
  });

  it('without an identifierKey, come from the Klaviyo key: rotating it gives another key id', () => {
    const fromKlaviyo = identifierKeyOf({ klaviyoPrivateKey: 'pk_one' });
    expect(identifierKeyOf({ klaviyoPrivateKey: 'pk_one' })).toEqual(fromKlaviyo);
    expect(identifierKeyOf({ klaviyoPrivateKey: 'pk_two' }).id).not.toBe(fromKlaviyo.id);
    expect(fromKlaviyo.id).not.toContain('pk_one');
  });
});

describe('digests', () => {
  it('match an email whatever its case (Klaviyo matches emails case-insensitively), never another value', () => {
    const digest = digestOf(acme, 'email', 'Ada@Example.com');
    expect(digest).toBe(digestOf(acme, 'email', 'ada@example.com'));
    expect(digest).not.toBe(digestOf(acme, 'email', 'ada2@example.com'));
    expect(digest).not.toContain('ada');
    expect(digest).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('depend on the tenant key and the field', () => {
    expect(digestOf(acme, 'email', 'ada@example.com')).not.toBe(digestOf(globex, 'email', 'ada@example.com'));
    expect(digestOf(acme, 'phone_number', '+14155550123')).not.toBe(digestOf(acme, 'email', '+14155550123'));
  });

  it('are null for no value: an absent identifier counts as none', () => {
    expect(digestIdentifiers(acme, { email: 'ada@example.com' })).toEqual({
      email: digestOf(acme, 'email', 'ada@example.com'),
      phone_number: null,
    });
    expect(digestIdentifiers(acme, { email: null, phone_number: '' })).toEqual({
      email: null,
      phone_number: null,
    });
  });

  it('keep an audited identifier masked and digested; the external id as it is', () => {
    expect(auditedValue(acme, 'email', 'ada@example.com')).toEqual({
      masked: 'a***@example.com',
      digest: digestOf(acme, 'email', 'ada@example.com'),
    });
    expect(auditedValue(acme, 'phone_number', '+14155550123')).toEqual({
      masked: '********0123',
      digest: digestOf(acme, 'phone_number', '+14155550123'),
    });
    expect(auditedValue(acme, 'external_id', '1001')).toBe('1001');
    expect(auditedValue(acme, 'email', null)).toBeNull();
  });
});

describe('sealed identifiers', () => {
  const identifiers = { email: 'ada@example.com', phone_number: null };

  it('open to what was sealed, and hold no plaintext; a random IV makes each seal different', () => {
    const sealed = sealIdentifiers(acme, identifiers, ACME_1001);
    expect(openIdentifiers(acme, sealed, ACME_1001)).toEqual(identifiers);
    expect(sealed).not.toContain('ada');
    expect(Buffer.from(sealed.split('.')[3] ?? '', 'base64url').toString('latin1')).not.toContain('ada');
    expect(sealIdentifiers(acme, identifiers, ACME_1001)).not.toBe(sealed);
  });

  it('refuse to open once altered', () => {
    const sealed = sealIdentifiers(acme, identifiers, ACME_1001);
    const parts = sealed.split('.');
    const ciphertext = Buffer.from(parts[3] ?? '', 'base64url');
    ciphertext[0] = (ciphertext[0] ?? 0) ^ 1;
    const altered = [...parts.slice(0, 3), ciphertext.toString('base64url'), parts[4]].join('.');
    expect(() => openIdentifiers(acme, altered, ACME_1001)).toThrow(SealedIdentifiersError);
    const shortTag = [...parts.slice(0, 4), (parts[4] ?? '').slice(0, 8)].join('.');
    expect(() => openIdentifiers(acme, shortTag, ACME_1001)).toThrow(SealedIdentifiersError);
    expect(() => openIdentifiers(acme, 'not sealed', ACME_1001)).toThrow(SealedIdentifiersError);
  });

  it("refuse to open for another customer's record or another tenant", () => {
    const sealed = sealIdentifiers(acme, identifiers, ACME_1001);
    expect(() => openIdentifiers(acme, sealed, customerRecordKey('acme', '2002'))).toThrow(
      SealedIdentifiersError,
    );
    expect(() => openIdentifiers(acme, sealed, customerRecordKey('globex', '1001'))).toThrow(
      SealedIdentifiersError,
    );
    // Globex's key on a record copied under its name: another key id, and it would not authenticate.
    expect(() => openIdentifiers(globex, sealed, customerRecordKey('globex', '1001'))).toThrow(/another key/);
    const relabelled = sealed.replace(`.${acme.id}.`, `.${globex.id}.`);
    expect(() => openIdentifiers(globex, relabelled, ACME_1001)).toThrow(/failed authentication/);
  });
});
