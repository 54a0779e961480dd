import { describe, expect, it } from 'vitest';
import { maskEmail, maskIdentifiers, maskPhone } from '../../lib/observability/mask.js';

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
});
