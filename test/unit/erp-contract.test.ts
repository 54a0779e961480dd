import { describe, expect, it } from 'vitest';
import {
  type ErpDelivery,
  MAX_CHANGES_PER_REQUEST,
  type ReadChange,
  type ReadRequest,
  readErpRequest,
} from '../../lib/erp/contract.js';
import { identityChangeSchema } from '../../lib/identity-change.js';

const delivery: ErpDelivery = {
  tenant: 'acme',
  webhookId: 'msg_2KWPBgLlAfxdpx2AI54pPJ85f4W',
  receivedAt: new Date('2026-05-01T12:00:05.000Z'),
  defaultPhoneRegion: 'US',
};

const aChange = (fields: Record<string, unknown> = {}) => ({
  externalId: 'C-1001',
  email: 'ada@example.com',
  occurredAt: '2026-05-01T14:00:00+02:00',
  ...fields,
});

const read = (body: unknown) =>
  readErpRequest(typeof body === 'string' ? body : JSON.stringify(body), delivery);

function changesOf(request: ReadRequest): ReadChange[] {
  if (!request.ok) throw new Error(`refused: ${JSON.stringify(request.errors)}`);
  return request.changes;
}

/** The one change of a single-change request, or its errors. */
function readOne(change: unknown) {
  const [only] = changesOf(read(change));
  if (!only) throw new Error('no change read');
  if ('change' in only) return { change: only.change };
  return { errors: only.result.status === 'rejected' ? only.result.errors : [] };
}

describe('a single change', () => {
  it('becomes an identity change from source erp, keyed by the webhook-id', () => {
    const request = read(
      aChange({
        id: 'chg-7',
        email: '  ada.new@example.com ',
        phoneNumber: '(415) 555-0199',
        previous: { email: 'ada.old@example.com', phoneNumber: '+1 415 555 0100' },
      }),
    );
    expect(request).toEqual({
      ok: true,
      changes: [
        {
          result: { index: 0, id: 'chg-7', externalId: 'C-1001', status: 'accepted' },
          change: {
            tenant: 'acme',
            source: 'erp',
            externalId: 'C-1001',
            email: 'ada.new@example.com',
            phoneNumber: '+14155550199',
            previous: { email: 'ada.old@example.com', phoneNumber: '+14155550100' },
            occurredAt: '2026-05-01T12:00:00.000Z',
            sourceEventId: delivery.webhookId,
            eventId: 'chg-7',
            receivedAt: '2026-05-01T12:00:05.000Z',
          },
        },
      ],
    });
    const [only] = changesOf(request);
    expect(identityChangeSchema.safeParse(only && 'change' in only && only.change).success).toBe(true);
  });

  it('gets a result even when rejected', () => {
    expect(changesOf(read(aChange({ phoneNumber: 'call me' })))).toEqual([
      {
        result: {
          index: 0,
          externalId: 'C-1001',
          status: 'rejected',
          errors: [{ path: '/phoneNumber', message: expect.stringMatching(/not a valid phone number/) }],
        },
        sourceEventId: delivery.webhookId,
        sent: aChange({ phoneNumber: 'call me' }),
      },
    ]);
  });
});

describe('a batch', () => {
  it('reads each change on its own, keyed by webhook-id and position', () => {
    const changes = changesOf(
      read({
        changes: [
          aChange({ externalId: 'C-1' }),
          aChange({ externalId: 'C-2', email: 'not an email' }),
          aChange({ externalId: 'C-3', id: 'erp-3', email: null, phoneNumber: '+442071838750' }),
        ],
      }),
    );
    expect(changes.map((item) => item.result)).toEqual([
      { index: 0, externalId: 'C-1', status: 'accepted' },
      {
        index: 1,
        externalId: 'C-2',
        status: 'rejected',
        errors: [{ path: '/email', message: 'must be an email address' }],
      },
      { index: 2, id: 'erp-3', externalId: 'C-3', status: 'accepted' },
    ]);
    expect(
      changes.map((item) =>
        'change' in item
          ? item.change.sourceEventId
          : 'erasure' in item
            ? item.erasure.sourceEventId
            : item.sourceEventId,
      ),
    ).toEqual([`${delivery.webhookId}:0`, `${delivery.webhookId}:1`, `${delivery.webhookId}:2`]);
  });

  it('takes exactly 100 changes', () => {
    const changes = Array.from({ length: MAX_CHANGES_PER_REQUEST }, (_, i) =>
      aChange({ externalId: `C-${i}` }),
    );
    expect(changesOf(read({ changes }))).toHaveLength(100);
  });

  it('is refused as a whole above 100 changes', () => {
    const changes = Array.from({ length: 101 }, (_, i) => aChange({ externalId: `C-${i}` }));
    expect(read({ changes })).toEqual({
      ok: false,
      errors: [{ path: '/changes', message: expect.stringMatching(/<=100/) }],
    });
  });

  it.each([
    ['empty', { changes: [] }, '/changes'],
    ['not a list', { changes: aChange() }, '/changes'],
    ['with other members', { changes: [aChange()], tenant: 'acme' }, ''],
  ])('is refused as a whole when %s', (_, body, path) => {
    const request = read(body);
    expect(request.ok).toBe(false);
    expect(!request.ok && request.errors.map((error) => error.path)).toEqual([path]);
  });

  it('rejects an item that is not an object, and still reads the others', () => {
    const changes = changesOf(read({ changes: ['C-1', aChange()] }));
    expect(changes.map((item) => item.result.status)).toEqual(['rejected', 'accepted']);
    expect(changes[0]?.result).toMatchObject({ index: 0, errors: [{ path: '' }] });
  });

  it('keeps deduplication keys within the queue’s 128 characters, whatever the webhook-id', () => {
    const longId = `msg_${'x'.repeat(200)}`;
    const [first, second] = changesOf(
      readErpRequest(JSON.stringify({ changes: [aChange(), aChange()] }), { ...delivery, webhookId: longId }),
    );
    const keys = [first, second].map((item) => (item && 'change' in item ? item.change.sourceEventId : ''));
    expect(keys[0]).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(keys[1]).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(keys[0]).not.toBe(keys[1]);
  });
});

describe('identifiers: a value sets, null clears, absent leaves', () => {
  it('carries null as null', () => {
    const { change } = readOne(aChange({ email: null, phoneNumber: null }));
    expect(change).toMatchObject({ email: null, phoneNumber: null });
  });

  it('carries an absent identifier as absent', () => {
    const { change } = readOne({
      externalId: 'C-1',
      phoneNumber: '+14155550123',
      occurredAt: '2026-05-01T12:00:00Z',
    });
    expect(change).not.toHaveProperty('email');
    expect(change?.phoneNumber).toBe('+14155550123');
  });

  it('needs email or phoneNumber', () => {
    expect(readOne({ externalId: 'C-1', occurredAt: '2026-05-01T12:00:00Z' }).errors).toEqual([
      { path: '', message: 'give email or phoneNumber (null clears it)' },
    ]);
  });

  it('reads previous identifiers given as null as unknown', () => {
    const { change } = readOne(aChange({ previous: { email: null, phoneNumber: null } }));
    expect(change).not.toHaveProperty('previous');
    const partly = readOne(aChange({ previous: { email: ' old@example.com', phoneNumber: null } }));
    expect(partly.change?.previous).toEqual({ email: 'old@example.com' });
  });
});

describe('field errors', () => {
  it.each([
    ['a phone number that is not one', { phoneNumber: 'call me maybe' }, '/phoneNumber'],
    ['a national number invalid in the default region', { phoneNumber: '555-0199' }, '/phoneNumber'],
    ['an empty phone number', { phoneNumber: '  ' }, '/phoneNumber'],
    [
      'a previous phone number that is not one',
      { previous: { phoneNumber: 'n/a' } },
      '/previous/phoneNumber',
    ],
    ['an empty email', { email: '' }, '/email'],
    ['a previous email that is not one', { previous: { email: 'old' } }, '/previous/email'],
    ['no occurredAt', { occurredAt: undefined }, '/occurredAt'],
    ['an occurredAt without offset', { occurredAt: '2026-05-01T12:00:00' }, '/occurredAt'],
    ['an occurredAt that is no date', { occurredAt: 'yesterday' }, '/occurredAt'],
    ['an occurredAt over 5 minutes ahead', { occurredAt: '2026-05-01T12:05:06Z' }, '/occurredAt'],
    ['a numeric externalId', { externalId: 1001 }, '/externalId'],
    ['an empty externalId', { externalId: '' }, '/externalId'],
    ['an id that is no string', { id: 7 }, '/id'],
    ['an unknown member', { phone: '+14155550123' }, ''],
    ['an unknown member of previous', { previous: { externalId: 'C-0' } }, '/previous'],
  ])('rejects %s, naming the field', (_, fields, path) => {
    const { errors } = readOne(aChange(fields));
    expect(errors?.map((error) => error.path)).toEqual([path]);
  });

  it('rejects a change of a batch without externalId (alone, it would be no change at all)', () => {
    const [item] = changesOf(read({ changes: [aChange({ externalId: undefined })] }));
    expect(item?.result).toEqual({
      index: 0,
      status: 'rejected',
      errors: [{ path: '/externalId', message: expect.any(String) }],
    });
  });

  it('names unknown members in the message', () => {
    expect(readOne(aChange({ phone: '+14155550123' })).errors?.[0]?.message).toMatch(/"phone"/);
  });

  it('lists every problem of a change', () => {
    const { errors } = readOne(aChange({ phoneNumber: 'nope', previous: { phoneNumber: 'nope' } }));
    expect(errors?.map((error) => error.path)).toEqual(['/phoneNumber', '/previous/phoneNumber']);
  });

  it('accepts an occurredAt up to 5 minutes ahead of our clock', () => {
    expect(readOne(aChange({ occurredAt: '2026-05-01T12:05:05Z' })).change?.occurredAt).toBe(
      '2026-05-01T12:05:05.000Z',
    );
  });

  it('points into nested members and batch items relative to the change', () => {
    const nested = changesOf(read({ changes: [aChange(), aChange({ previous: { email: 7 } })] }));
    expect(nested[1]?.result).toMatchObject({ index: 1, errors: [{ path: '/previous/email' }] });
  });
});

describe('bodies that are no change at all', () => {
  it.each([
    ['not JSON', 'externalId=C-1&email=a@example.com'],
    ['a JSON list', '[{"externalId":"C-1"}]'],
    ['a JSON string', '"C-1"'],
    ['JSON null', 'null'],
    ['an object with neither externalId nor changes', '{"customer":{"id":"C-1"}}'],
    ['empty', ''],
  ])('are refused as a whole: %s', (_, body) => {
    const request = read(body);
    expect(request.ok).toBe(false);
    expect(!request.ok && request.errors).toEqual([{ path: '', message: expect.any(String) }]);
  });
});

describe('an erasure item', () => {
  it("is accepted and queued as the customer's erasure, alone or in a batch with changes", () => {
    const single = changesOf(read({ type: 'erasure', externalId: 'C-9', id: 'gdpr-1' }));
    expect(single).toEqual([
      {
        result: { index: 0, id: 'gdpr-1', externalId: 'C-9', status: 'accepted' },
        erasure: {
          kind: 'customerRedact',
          tenant: delivery.tenant,
          source: 'erp',
          externalId: 'C-9',
          requestedAt: delivery.receivedAt.toISOString(),
          sourceEventId: delivery.webhookId,
          receivedAt: delivery.receivedAt.toISOString(),
        },
      },
    ]);
    const batch = changesOf(read({ changes: [aChange(), { type: 'erasure', externalId: 'C-1' }] }));
    expect(
      batch.map((item) => ('erasure' in item ? 'erasure' : 'change' in item ? 'change' : 'rejected')),
    ).toEqual(['change', 'erasure']);
  });

  it('is rejected with its field errors when it carries identifiers or no externalId', () => {
    const [withEmail] = changesOf(read({ type: 'erasure', externalId: 'C-9', email: 'a@example.com' }));
    expect(withEmail?.result).toMatchObject({ status: 'rejected', errors: [{ path: '' }] });
    const [withoutId] = changesOf(read({ type: 'erasure' }));
    expect(withoutId?.result.status).toBe('rejected');
  });
});
