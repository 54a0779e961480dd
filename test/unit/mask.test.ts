import { describe, expect, it } from 'vitest';
import {
  maskEmail,
  maskIdentifiers,
  maskIdentifiersInText,
  maskPhone,
} from '../../lib/observability/mask.js';

describe('masking personal data for logs', () => {
  it('keeps the first letter and domain of an email, the last four digits of a phone', () => {
    expect(maskEmail('ada.lovelace@example.com')).toBe('a***@example.com');
    expect(maskPhone('+14155550123')).toBe('********0123');
    expect(maskEmail(null)).toBeNull();
  });

  it('masks the identifiers of a change and nothing else', () => {
    const masked = maskIdentifiers({
      email: 'ada@example.com',
      phoneNumber: '+14155550123',
      externalId: '42',
    });
    expect(masked).toEqual({ email: 'a***@example.com', phoneNumber: '********0123', externalId: '42' });
    expect(JSON.stringify(masked)).not.toContain('ada@');
  });

  it("masks an ERP change's previous identifiers too", () => {
    const masked = maskIdentifiers({
      email: 'ada@example.com',
      previous: { email: 'ada.old@example.com', phoneNumber: '+14155550100' },
    });
    expect(masked.previous).toEqual({ email: 'a***@example.com', phoneNumber: '********0100' });
  });

  it('masks emails and international phone numbers inside free text, and nothing else', () => {
    const text =
      'Klaviyo answered 400 to POST /api/profiles: Invalid email "ada.lovelace@example.com"; ' +
      'phone +14155550123 or +44 (20) 7946-0958 taken by profile 01HXYZ for customer 706405506930370084 at 2026-06-01T00:00:00+02:00';
    const masked = maskIdentifiersInText(text);
    expect(masked).toBe(
      'Klaviyo answered 400 to POST /api/profiles: Invalid email "a***@example.com"; ' +
        'phone ********0123 or **************0958 taken by profile 01HXYZ for customer 706405506930370084 at 2026-06-01T00:00:00+02:00',
    );
    expect(maskIdentifiersInText(masked)).toBe(masked);
    expect(maskIdentifiersInText('mailto:bob@example.org.')).toBe('mailto:b***@example.org.');
  });
});
