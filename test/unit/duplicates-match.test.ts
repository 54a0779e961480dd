import { describe, expect, it } from 'vitest';
import { csvField, reportCsv, reportLineOf } from '../../cli/duplicates-report.js';
import { createMemorySyncState } from '../../lib/adapters/memory-sync-state.js';
import { KNOWN_DOMAINS } from '../../lib/duplicates/known-domains.js';
import {
  findRelayPairs,
  findTypoPairs,
  oneEditApart,
  type ScannedProfile,
} from '../../lib/duplicates/match.js';
import { MERGE_DUPLICATE_PLAN, mergePair, refusalOf } from '../../lib/duplicates/merge-pair.js';
import { customerLookups, reviewPairs } from '../../lib/duplicates/review.js';
import { createMemoryKlaviyo } from '../support/memory-klaviyo.js';

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

// What the command makes of the pairs: which --apply merges, the lookups of an export, the merge step, the report.
describe('reviewPairs', () => {
  it('orders pairs surest first and says which --apply merges', () => {
    const customer = profile({ email: 'ada.lovelace@gmail.com', external_id: 'C-1', ...ada });
    const misspelt = profile({ email: 'ada.lovelace@gmial.com', ...ada });
    const keystroke = profile({ email: 'ada.lovelacw@gmail.com' });
    const pairs = reviewPairs([customer, keystroke, misspelt], [], 0.9);
    expect(pairs.map((pair) => [pair.source.id, pair.confidence, pair.verdict])).toEqual([
      [misspelt.id, 0.95, 'merge'],
      [keystroke.id, 0.5, 'below_min_confidence'],
    ]);
  });

  it('never merges a source that pairs with two customers', () => {
    const anna = profile({ email: 'anna@example.com', external_id: 'C-anna' });
    const annas = profile({ email: 'annas@example.com', external_id: 'C-annas' });
    const either = profile({ email: 'annaa@example.com' });
    const pairs = reviewPairs([anna, annas, either], [], 0.1);
    expect(pairs).toHaveLength(2);
    expect(pairs.every((pair) => pair.verdict === 'ambiguous_source')).toBe(true);
  });

  it('keeps one pair per destination and source: the surest rule', () => {
    // One keystroke apart, in a digit (0.25); and the merchant's file says it is this customer's (0.95).
    const customer = profile({ email: 'buyer1234@privaterelay.appleid.com', external_id: 'C-2' });
    const relay = profile({ email: 'buyer1235@privaterelay.appleid.com' });
    const relays = [{ email: 'buyer1235@privaterelay.appleid.com', externalId: 'C-2' }];
    expect(reviewPairs([customer, relay], [], 0.9).map((pair) => pair.rule)).toEqual(['local_part_typo']);
    const pairs = reviewPairs([customer, relay], relays, 0.9);
    expect(pairs.map((pair) => [pair.rule, pair.confidence])).toEqual([['marketplace_relay', 0.95]]);
  });
});

describe('customerLookups', () => {
  it("looks up each customer's email, its misspelt domains, the relay addresses and their customers", () => {
    const lookups = customerLookups(
      ['Ada@Gmail.com'],
      [{ email: 'x1@privaterelay.appleid.com', externalId: 'C-9' }],
    );
    const emails = lookups.filter((lookup) => lookup.field === 'email').flatMap((lookup) => lookup.values);
    expect(emails).toEqual(
      expect.arrayContaining(['Ada@Gmail.com', 'ada@gmail.com', 'Ada@gmial.com', 'ada@gmial.com']),
    );
    expect(emails).toContain('x1@privaterelay.appleid.com');
    expect(emails).not.toContain('Ada@hotmial.com');
    expect(lookups.filter((lookup) => lookup.field === 'external_id')).toEqual([
      { field: 'external_id', values: ['C-9'] },
    ]);
  });

  it('asks at most 100 values a lookup', () => {
    const emails = Array.from({ length: 150 }, (_, i) => `c${i}@example.com`);
    expect(customerLookups(emails, []).map((lookup) => lookup.values.length)).toEqual([100, 50]);
  });
});

describe('refusalOf', () => {
  const customer = profile({ email: 'ada@gmail.com', external_id: 'C-3' });
  const typo = profile({ email: 'ada@gmial.com' });
  const [pair] = reviewPairs([customer, typo], [], 0.9);
  if (!pair) throw new Error('the rules found no pair');

  it('lets a pair whose profiles are as scanned through', () => {
    expect(refusalOf(pair, { destination: customer, source: typo })).toBeUndefined();
  });

  it.each([
    [
      'the source now carries an external_id',
      { source: { ...typo, external_id: 'C-4' } },
      'source_has_external_id',
    ],
    ['the source is gone', { source: undefined }, 'source_gone'],
    ['the destination is gone', { destination: undefined }, 'destination_gone'],
    [
      'the destination lost its external_id',
      { destination: { ...customer, external_id: null } },
      'destination_changed',
    ],
    ["the source's email changed", { source: { ...typo, email: 'other@gmial.com' } }, 'source_changed'],
  ])('refuses when %s', (_label, now, reason) => {
    expect(refusalOf(pair, { destination: customer, source: typo, ...now })?.reason).toBe(reason);
  });
});

describe('mergePair', () => {
  const setUp = (options: Parameters<typeof createMemoryKlaviyo>[0] = {}) => {
    const klaviyo = createMemoryKlaviyo(options);
    const memory = createMemorySyncState();
    const customer = klaviyo.seed({ email: 'grace@gmail.com', external_id: 'C-5' });
    const typo = klaviyo.seed({ email: 'grace@gmial.com' });
    const [pair] = reviewPairs([customer, typo], [], 0.9);
    const deps = {
      tenant: 'acme',
      klaviyo,
      state: memory,
      audit: memory,
      clock: () => new Date('2026-05-01T00:00:00Z'),
      mergeWait: { attempts: 2, firstDelayMs: 1 },
    };
    return { klaviyo, memory, customer, typo, pair: pair as NonNullable<typeof pair>, deps };
  };

  it('merges the source into the customer and writes the audit entry', async () => {
    const { klaviyo, memory, customer, typo, pair, deps } = setUp();
    expect(await mergePair(pair, deps)).toEqual({ outcome: 'merged', reason: `merged profile ${typo.id}` });
    expect(klaviyo.stored(typo.id)).toBeUndefined();
    const [entry] = await memory.history('acme', 'C-5');
    expect(entry).toMatchObject({
      outcome: 'merged',
      plan: MERGE_DUPLICATE_PLAN,
      profileIds: [customer.id, typo.id],
      reason: expect.stringContaining('misspelt_domain'),
    });
  });

  it('refuses, and audits the refusal, when the source gained an external_id since the scan', async () => {
    const { klaviyo, memory, typo, pair, deps } = setUp();
    await klaviyo.updateProfile(typo.id, { external_id: 'C-6' });
    const result = await mergePair(pair, deps);
    expect(result).toMatchObject({
      outcome: 'refused',
      reason: expect.stringMatching(/^source_has_external_id/),
    });
    expect(klaviyo.callsOf('mergeProfiles')).toEqual([]);
    expect((await memory.history('acme', 'C-5'))[0]).toMatchObject({ outcome: 'skipped' });
  });

  it('says when Klaviyo is still merging after the wait', async () => {
    const { klaviyo, pair, deps } = setUp({ mergeAfterGets: Number.POSITIVE_INFINITY });
    expect((await mergePair(pair, deps)).outcome).toBe('merge_pending');
    expect(klaviyo.pendingMerges).toHaveLength(1);
  });
});

describe('the report', () => {
  it('quotes CSV fields that need it and keeps spreadsheets from running a name as a formula', () => {
    expect(csvField('plain')).toBe('plain');
    expect(csvField('a,b')).toBe('"a,b"');
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
    expect(csvField('=HYPERLINK("x")')).toBe(`"'=HYPERLINK(""x"")"`);
  });

  it('has a header and one row per pair, with both profiles and what a merge does', () => {
    const customer = profile({ email: 'ada@gmail.com', external_id: 'C-7', ...ada });
    const typo = profile({ email: 'ada@gmial.com', ...ada });
    const csv = reportCsv(reviewPairs([customer, typo], [], 0.9).map(reportLineOf))
      .trim()
      .split('\n');
    expect(csv[0]).toMatch(/^confidence,rule,apply,destination_id,destination_external_id,/);
    expect(csv[1]).toContain(
      `0.95,misspelt_domain,merge,${customer.id},C-7,ada@gmail.com,Ada Lovelace,${typo.id}`,
    );
    expect(csv[1]).toContain(`Klaviyo then deletes ${typo.id}`);
  });
});
