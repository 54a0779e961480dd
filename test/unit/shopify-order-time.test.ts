import { describe, expect, it } from 'vitest';
import { MAX_UNSIGNED_TIME_AHEAD_MS, orderTimeOf } from '../../lib/shopify/order-time.js';

/** Which time orders a Shopify change: the signed body's, else a capped header time, marked unsigned. */
const RECEIVED = new Date('2026-05-01T12:00:00.000Z');
const AHEAD_BY = (ms: number) => new Date(RECEIVED.getTime() + ms).toISOString();

describe('orderTimeOf', () => {
  it.each([
    [
      'the signed updated_at, whatever the header says',
      { signedTime: '2026-05-01T07:59:00-04:00', headerTime: '2100-01-01T00:00:00Z' },
      { occurredAt: '2026-05-01T11:59:00.000Z', unsigned: false },
    ],
    [
      'a signed updated_at ahead of our clock (Shopify says so)',
      { signedTime: AHEAD_BY(3_600_000), headerTime: undefined },
      { occurredAt: AHEAD_BY(3_600_000), unsigned: false },
    ],
    [
      'no updated_at: X-Shopify-Triggered-At, unsigned',
      { signedTime: null, headerTime: '2026-05-01T11:58:00Z' },
      { occurredAt: '2026-05-01T11:58:00.000Z', unsigned: true },
    ],
    [
      'a header time within the allowed skew ahead',
      { signedTime: undefined, headerTime: AHEAD_BY(MAX_UNSIGNED_TIME_AHEAD_MS) },
      { occurredAt: AHEAD_BY(MAX_UNSIGNED_TIME_AHEAD_MS), unsigned: true },
    ],
    [
      'a header time beyond the skew: the receipt time instead',
      { signedTime: undefined, headerTime: AHEAD_BY(MAX_UNSIGNED_TIME_AHEAD_MS + 1) },
      { occurredAt: RECEIVED.toISOString(), unsigned: true },
    ],
    [
      'a header time in 2100: the receipt time instead',
      { signedTime: undefined, headerTime: '2100-01-01T00:00:00Z' },
      { occurredAt: RECEIVED.toISOString(), unsigned: true },
    ],
  ])('takes %s', (_, times, expected) => {
    expect(orderTimeOf({ ...times, receivedAt: RECEIVED, headersAuthentic: false })).toEqual(expected);
  });

  it('trusts header times through an authenticated transport (EventBridge), capped all the same', () => {
    const through = (headerTime: string) =>
      orderTimeOf({ signedTime: undefined, headerTime, receivedAt: RECEIVED, headersAuthentic: true });
    expect(through('2026-05-01T11:58:00Z')).toEqual({
      occurredAt: '2026-05-01T11:58:00.000Z',
      unsigned: false,
    });
    expect(through('2100-01-01T00:00:00Z')).toEqual({ occurredAt: RECEIVED.toISOString(), unsigned: false });
  });

  it('has no time for a malformed updated_at (no header stands in for it), nor for no time at all', () => {
    const inputs = { receivedAt: RECEIVED, headersAuthentic: false };
    expect(
      orderTimeOf({ ...inputs, signedTime: 'yesterday', headerTime: '2026-05-01T11:58:00Z' }),
    ).toBeUndefined();
    expect(orderTimeOf({ ...inputs, signedTime: null, headerTime: 'soon' })).toBeUndefined();
    expect(orderTimeOf({ ...inputs, signedTime: null, headerTime: undefined })).toBeUndefined();
  });

  it('falls back to the receipt time when asked (merges: their payload has no time)', () => {
    const inputs = {
      signedTime: undefined,
      headerTime: undefined,
      receivedAt: RECEIVED,
      headersAuthentic: false,
    };
    expect(orderTimeOf(inputs, { orReceipt: true })).toEqual({
      occurredAt: RECEIVED.toISOString(),
      unsigned: true,
    });
  });
});
