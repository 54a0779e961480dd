import { describe, expect, it } from 'vitest';
import { normalizeEmail, normalizePhone } from '../../lib/normalize.js';

describe('normalizeEmail', () => {
  it('trims, and treats blank as absent', () => {
    expect(normalizeEmail('  ada@example.com \n')).toBe('ada@example.com');
    expect(normalizeEmail('   ')).toBeUndefined();
    expect(normalizeEmail(null)).toBeUndefined();
  });
});

describe('normalizePhone', () => {
  it.each([
    ['+1 (415) 555-0123', 'US', '+14155550123'],
    ['(415) 555-0123', 'US', '+14155550123'],
    ['020 7946 0958', 'GB', '+442079460958'],
    ['+44 20 7946 0958', 'US', '+442079460958'],
  ])('%s in %s → %s', (raw, region, e164) => {
    expect(normalizePhone(raw, region)).toEqual({ ok: true, e164 });
  });

  it.each([
    ['not a phone', 'unparseable'],
    ['+1 555', 'invalid'],
    ['', 'empty'],
  ])('refuses %j as %s', (raw, reason) => {
    expect(normalizePhone(raw, 'US')).toEqual({ ok: false, reason });
  });
});
