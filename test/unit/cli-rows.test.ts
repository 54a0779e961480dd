import { describe, expect, it } from 'vitest';
import type { InputRow } from '../../cli/input.js';
import { applyTaskOf, bindTaskOf, type RowContext } from '../../cli/rows.js';

const NOW = '2026-06-01T12:00:00.000Z';
const context: RowContext = {
  tenant: 'acme',
  region: 'US',
  fileName: 'changes.csv',
  now: () => new Date(NOW),
};
const row = (values: Record<string, string>, line = 7): InputRow => ({ line, values });

describe('applyTaskOf', () => {
  it('turns a row into a cli change: trimmed email, E.164 phones, previous identifiers', () => {
    const task = applyTaskOf(
      row({
        externalid: 'erp-1',
        email: 'new@example.com',
        phone: '(415) 555-0134',
        previousemail: 'old@example.com',
        previousphone: '+44 20 7946 0958',
        occurredat: '2026-05-01T12:00:00+02:00',
      }),
      context,
    );
    expect(task).toEqual({
      line: 7,
      externalId: 'erp-1',
      change: {
        tenant: 'acme',
        source: 'cli',
        externalId: 'erp-1',
        email: 'new@example.com',
        phoneNumber: '+14155550134',
        previous: { email: 'old@example.com', phoneNumber: '+442079460958' },
        occurredAt: '2026-05-01T12:00:00+02:00',
        sourceEventId: 'cli:changes.csv:7',
        receivedAt: NOW,
      },
    });
  });

  it('leaves identifiers not given absent (so they stay as they are) and dates the change when read', () => {
    const task = applyTaskOf(row({ externalid: 'erp-2', phone: '415 555 0135' }), context);
    expect(task).toMatchObject({ change: { phoneNumber: '+14155550135', occurredAt: NOW } });
    const change = 'change' in task ? task.change : undefined;
    expect(change).not.toHaveProperty('email');
    expect(change).not.toHaveProperty('previous');
  });

  it('reads national phone numbers in the given region', () => {
    const task = applyTaskOf(row({ externalid: 'erp-3', phone: '020 7946 0958' }), {
      ...context,
      region: 'GB',
    });
    expect(task).toMatchObject({ change: { phoneNumber: '+442079460958' } });
  });

  it.each([
    [{ email: 'a@example.com' }, 'externalId is missing', undefined],
    [
      { externalid: 'e', phone: 'call me' },
      'phone: is not a valid phone number (E.164, or national in US)',
      'e',
    ],
    [{ externalid: 'e', phone: '12' }, 'phone: is not a valid phone number (E.164, or national in US)', 'e'],
    [
      { externalid: 'e', previousphone: '555' },
      'previousPhone: is not a valid phone number (E.164, or national in US)',
      'e',
    ],
    // The ERP endpoint's own checks (lib/erp/contract.ts): such a row never reaches Klaviyo.
    [{ externalid: 'e', email: 'not-an-email' }, 'email: must be an email address', 'e'],
    [
      { externalid: 'e', email: 'bad@@example', previousemail: 'x' },
      'email: must be an email address; previousEmail: must be an email address',
      'e',
    ],
    [
      { externalid: 'e', occurredat: '2026-05-01' },
      'occurredAt: not an ISO 8601 date-time with an offset, such as 2026-05-01T12:00:00Z',
      'e',
    ],
    [
      { externalid: 'x'.repeat(256) },
      'externalId: Too big: expected string to have <=255 characters',
      'x'.repeat(256),
    ],
  ])('reports a bad row with its line and reason: %j', (values, reason, externalId) => {
    expect(applyTaskOf(row(values), context)).toEqual({
      line: 7,
      ...(externalId ? { externalId } : {}),
      outcome: 'invalid',
      reason,
    });
  });

  it('passes on why a line could not be read', () => {
    expect(applyTaskOf({ line: 3, problem: 'malformed JSON' }, context)).toEqual({
      line: 3,
      outcome: 'invalid',
      reason: 'malformed JSON',
    });
  });
});

describe('bindTaskOf', () => {
  it("reads Shopify's export columns, without the apostrophes spreadsheets keep numbers as text with", () => {
    const task = bindTaskOf(
      row({
        'customer id': "'7044448075932",
        'first name': 'Ada',
        email: 'ada@example.com',
        phone: "'+14155550134",
      }),
      context,
    );
    expect(task).toEqual({
      line: 7,
      externalId: '7044448075932',
      email: 'ada@example.com',
      phoneNumber: '+14155550134',
      sourceEventId: 'cli:changes.csv:7',
    });
  });

  it('reads plain id,email,phone too', () => {
    expect(bindTaskOf(row({ id: '42', phone: '415-555-0136' }), context)).toMatchObject({
      externalId: '42',
      phoneNumber: '+14155550136',
    });
  });

  it.each([
    [{ email: 'a@example.com' }, 'Customer ID is missing'],
    [{ id: '42' }, 'no email or phone to find the profile by'],
    [
      { id: '42', email: 'a@example.com', phone: '12' },
      'Phone: is not a valid phone number (E.164, or national in US)',
    ],
    [{ id: '42', email: 'bad@@example' }, 'Email: must be an email address'],
  ])('reports a row it cannot bind: %j', (values, reason) => {
    expect(bindTaskOf(row(values), context)).toMatchObject({ line: 7, outcome: 'invalid', reason });
  });
});
