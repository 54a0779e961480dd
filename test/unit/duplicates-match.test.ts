import { describe, expect, it } from 'vitest';
import { KNOWN_DOMAINS } from '../../lib/duplicates/known-domains.js';
import {
  findRelayPairs,
  findTypoPairs,
  oneEditApart,
  type ScannedProfile,
} from '../../lib/duplicates/match.js';

let next = 0;
const profile = (fields: Partial<ScannedProfile>): ScannedProfile => ({
  id: `01P${next++}`,
  email: null,
  phone_number: null,
  external_id: null,
  first_name: null,
  last_name: null,
  ...fields,
});
const customer = (email: string, names: Partial<ScannedProfile> = {}) =>
  profile({ email, external_id: `C-${next}`, ...names });
const ada = { first_name: 'Ada', last_name: 'Lovelace' };

describe('oneEditApart', () => {
  it.each([
    ['anna', 'ana', true], // left out
    ['ana', 'anna', true], // doubled
    ['john', 'jonh', true], // neighbours swapped
    ['john', 'joan', true], // replaced
    ['john', 'john', false],
    ['john', 'jane', false], // two apart
    ['abc', 'abcde', false],
    ['abcd', 'bacd', true],
    ['abcd', 'abdc', true],
  ])('%s ~ %s: %s', (a, b, expected) => {
    expect(oneEditApart(a, b) !== undefined).toBe(expected);
  });
});

describe('typo rule: a known misspelt domain of a common provider', () => {
  it('pairs gmial.com with the customer at gmail.com, the same local part and name', () => {
    const ours = customer('ada.lovelace@gmail.com', ada);
    const typo = profile({ email: 'Ada.Lovelace@gmial.com', ...ada });
    const [pair, ...rest] = findTypoPairs([ours, typo]);
    expect(rest).toEqual([]);
    expect(pair).toMatchObject({
      destination: ours,
      source: typo,
      rule: 'misspelt_domain',
      confidence: 0.95,
    });
    expect(pair?.why).toMatch(/gmial\.com is a known misspelling of gmail\.com/);
  });

  it('is less sure without names to compare, and refuses when the names differ', () => {
    const ours = customer('ada@gmail.com', ada);
    expect(findTypoPairs([ours, profile({ email: 'ada@gmial.com' })])[0]?.confidence).toBe(0.85);
    expect(
      findTypoPairs([ours, profile({ email: 'ada@gmial.com', first_name: 'Ann', last_name: 'Lovelace' })]),
    ).toEqual([]);
  });

  it('does not match a misspelt domain whose local part differs too', () => {
    expect(
      findTypoPairs([customer('ada@gmail.com', ada), profile({ email: 'adb@gmial.com', ...ada })]),
    ).toEqual([]);
  });

  it('does not treat an unknown look-alike domain as a misspelling', () => {
    // gmail.de is a real domain, not in the list: another mailbox, maybe another person.
    expect(
      findTypoPairs([customer('ada@gmail.com', ada), profile({ email: 'ada@gmail.de', ...ada })]),
    ).toEqual([]);
  });

  it('keeps every list entry one keystroke from the domain it stands for', () => {
    for (const [typo, meant] of Object.entries(KNOWN_DOMAINS.misspeltDomains)) {
      expect(oneEditApart(typo, meant), `${typo} -> ${meant}`).toBeDefined();
    }
  });
});

describe('typo rule: one edit in the local part at the same domain', () => {
  it('pairs a left-out letter when both have the same first and last name', () => {
    const ours = customer('ada.lovelace@example.com', ada);
    const typo = profile({ email: 'ada.lovlace@example.com', ...ada });
    expect(findTypoPairs([ours, typo])).toEqual([
      expect.objectContaining({ destination: ours, source: typo, rule: 'local_part_typo', confidence: 0.8 }),
    ]);
  });

  it('pairs swapped neighbours, less surely when a side has no name', () => {
    const [pair] = findTypoPairs([
      customer('jonathan@example.com', ada),
      profile({ email: 'jonahtan@example.com' }),
    ]);
    expect(pair?.confidence).toBe(0.5);
  });

  it.each([
    ['two edits apart', 'ada.lovelace@example.com', 'ada.lovlaec@example.com', ada],
    ['the same local part at another domain', 'ada.lovelace@example.com', 'ada.lovelace@example.org', ada],
    [
      'one edit but different names',
      'maria@example.com',
      'mario@example.com',
      { first_name: 'Mario', last_name: 'Rossi' },
    ],
    ['a local part too short to tell', 'ann@example.com', 'anne@example.com', ada],
  ])('does not pair %s', (_, ours, theirs, names) => {
    expect(findTypoPairs([customer(ours, ada), profile({ email: theirs, ...names })])).toEqual([]);
  });

  it('doubts a difference in a digit: anna1 and anna2 are often two people', () => {
    const [pair] = findTypoPairs([
      customer('anna1@example.com', ada),
      profile({ email: 'anna2@example.com', ...ada }),
    ]);
    expect(pair?.confidence).toBe(0.4);
    expect(pair?.why).toMatch(/digit/);
  });

  it('never pairs two customers, nor two profiles without a customer', () => {
    expect(
      findTypoPairs([customer('ada.lovelace@gmail.com', ada), customer('ada.lovelace@gmial.com', ada)]),
    ).toEqual([]);
    expect(
      findTypoPairs([
        profile({ email: 'ada.lovelace@gmail.com', ...ada }),
        profile({ email: 'ada.lovelace@gmial.com', ...ada }),
      ]),
    ).toEqual([]);
  });
});

describe('relay rule: marketplace addresses matched through the merchant file', () => {
  it("pairs a relay address with the customer the merchant's file names", () => {
    const ours = profile({ email: 'ada@example.com', external_id: 'BUYER-7' });
    const relay = profile({ email: 'x7q2k9@marketplace.amazon.com' });
    const [pair] = findRelayPairs(
      [ours, relay],
      [{ email: 'X7Q2K9@marketplace.amazon.com', externalId: 'BUYER-7' }],
    );
    expect(pair).toMatchObject({
      destination: ours,
      source: relay,
      rule: 'marketplace_relay',
      confidence: 0.95,
    });
  });

  it('is less sure of an address at a domain it does not know as a relay', () => {
    const ours = profile({ email: 'ada@example.com', external_id: 'BUYER-7' });
    const other = profile({ email: 'order-1@shop-relay.example' });
    expect(
      findRelayPairs([ours, other], [{ email: 'order-1@shop-relay.example', externalId: 'BUYER-7' }])[0]
        ?.confidence,
    ).toBe(0.85);
  });

  it('does not pair a relay address the file does not list, or one whose customer has no profile', () => {
    const ours = profile({ email: 'ada@example.com', external_id: 'BUYER-7' });
    const relay = profile({ email: 'abc@privaterelay.appleid.com' });
    expect(findRelayPairs([ours, relay], [])).toEqual([]);
    expect(
      findRelayPairs([ours, relay], [{ email: 'abc@privaterelay.appleid.com', externalId: 'BUYER-8' }]),
    ).toEqual([]);
  });

  it('never takes a relay address that already carries an external_id', () => {
    const ours = profile({ email: 'ada@example.com', external_id: 'BUYER-7' });
    const taken = profile({ email: 'abc@privaterelay.appleid.com', external_id: 'BUYER-9' });
    expect(
      findRelayPairs([ours, taken], [{ email: 'abc@privaterelay.appleid.com', externalId: 'BUYER-7' }]),
    ).toEqual([]);
  });
});
