import { describe, expect, it } from 'vitest';
import { MAX_FILTER_VALUES } from '../../lib/klaviyo/lookup.js';
import { withBatchedLookups } from '../../lib/sync/batched-lookups.js';
import { aChange } from '../support/factories.js';
import { createMemoryKlaviyo } from '../support/memory-klaviyo.js';

/**
 * Batched lookups: a batch's lookups made up front with a few `any(field,[…])` queries, field by
 * field in docs/applying-changes.md's order, then each customer's own lookups answered from them.
 */
function batch() {
  const klaviyo = createMemoryKlaviyo();
  const batched = withBatchedLookups(klaviyo);
  const queries = () => klaviyo.callsOf('findProfilesAmong') as [string, string[]][];
  return { klaviyo, batched, queries };
}

/** Four customers as a batch meets them, and their profiles in Klaviyo. */
function aMixedBatch(klaviyo: ReturnType<typeof createMemoryKlaviyo>) {
  const known = klaviyo.seed({ external_id: '1001', email: 'known@example.com' });
  const emailOnly = klaviyo.seed({ email: 'shopper@example.com' });
  const movedAway = klaviyo.seed({ email: 'erp.old@example.com' });
  const changes = {
    known: aChange({ externalId: '1001', email: 'known.new@example.com', phoneNumber: '+14155550101' }),
    emailOnly: aChange({ externalId: '1002', email: 'Shopper@Example.com', phoneNumber: '+14155550102' }),
    new: aChange({ externalId: '1003', email: 'first@example.com', phoneNumber: '+14155550103' }),
    erp: aChange({
      externalId: '1004',
      source: 'erp',
      email: 'erp.new@example.com',
      phoneNumber: '+14155550104',
      previous: { email: 'erp.old@example.com' },
    }),
  };
  return { profiles: { known, emailOnly, movedAway }, changes };
}

describe('withBatchedLookups', () => {
  it('queries field by field (external_id, email, phone), sending on only what is unresolved', async () => {
    const { klaviyo, batched, queries } = batch();
    const { changes } = aMixedBatch(klaviyo);
    await batched.prefetch(Object.values(changes));

    expect(queries()).toEqual([
      ['external_id', ['1001', '1002', '1003', '1004']],
      // Emails as given and lower-cased: Klaviyo's filters compare case-sensitively.
      [
        'email',
        [
          'Shopper@Example.com',
          'shopper@example.com',
          'first@example.com',
          'erp.old@example.com',
          'erp.new@example.com',
        ],
      ],
      // Only the new customer is still unresolved.
      ['phone_number', ['+14155550103']],
    ]);
  });

  it("answers each customer's lookups from the batch's queries, as resolution asks them", async () => {
    const { klaviyo, batched } = batch();
    const { profiles, changes } = aMixedBatch(klaviyo);
    await batched.prefetch(Object.values(changes));
    const asked = klaviyo.calls.length;

    expect(await batched.findProfiles('external_id', '1001')).toEqual([profiles.known]);
    expect(await batched.findProfiles('external_id', '1002')).toEqual([]);
    expect(await batched.findProfiles('email', 'Shopper@Example.com')).toEqual([profiles.emailOnly]);
    expect(await batched.findProfiles('email', 'erp.old@example.com')).toEqual([profiles.movedAway]);
    expect(await batched.findProfiles('email', 'first@example.com')).toEqual([]);
    expect(await batched.findProfiles('phone_number', '+14155550103')).toEqual([]);
    expect(klaviyo.calls).toHaveLength(asked);

    // A lookup the batch did not make goes to Klaviyo.
    expect(await batched.findProfiles('phone_number', '+14155550101')).toEqual([]);
    expect(klaviyo.callsOf('findProfiles')).toEqual([['phone_number', '+14155550101']]);
  });

  it("makes the ERP change's lookups before the one that finds its profile, its previous phone too", async () => {
    const { klaviyo, batched, queries } = batch();
    const profile = klaviyo.seed({ email: 'erp.new@example.com' });
    const change = aChange({
      externalId: '1004',
      email: 'erp.new@example.com',
      phoneNumber: '+14155550104',
      previous: { email: 'erp.old@example.com', phoneNumber: '+14155550100' },
    });
    await batched.prefetch([change]);

    expect(queries().map(([field, values]) => [field, values.length])).toEqual([
      ['external_id', 1],
      ['email', 2],
      ['phone_number', 1],
    ]);
    expect(queries()[2]).toEqual(['phone_number', ['+14155550100']]);
    // Resolution asks external_id, previous email, previous phone, then the email that finds it.
    for (const [field, value] of [
      ['external_id', '1004'],
      ['email', 'erp.old@example.com'],
      ['phone_number', '+14155550100'],
    ] as const) {
      expect(await batched.findProfiles(field, value)).toEqual([]);
    }
    expect(await batched.findProfiles('email', 'erp.new@example.com')).toEqual([profile]);
    expect(klaviyo.callsOf('findProfiles')).toEqual([]);
  });

  it('sends at most 100 values a query: 250 customers, half of them new, take seven', async () => {
    const { klaviyo, batched, queries } = batch();
    const changes = Array.from({ length: 250 }, (_, i) => {
      const known = i % 2 === 0;
      if (known) klaviyo.seed({ external_id: `c${i}`, email: `c${i}@example.com` });
      const phoneNumber = `+1415555${String(i).padStart(4, '0')}`;
      return aChange({ externalId: `c${i}`, email: `c${i}.new@example.com`, phoneNumber });
    });
    await batched.prefetch(changes);

    expect(queries().map(([field, values]) => [field, values.length])).toEqual([
      ['external_id', MAX_FILTER_VALUES],
      ['external_id', MAX_FILTER_VALUES],
      ['external_id', 50],
      ['email', MAX_FILTER_VALUES],
      ['email', 25],
      ['phone_number', MAX_FILTER_VALUES],
      ['phone_number', 25],
    ]);
    const sentOf = (field: string) => queries().flatMap(([f, values]) => (f === field ? values : []));
    const newOnes = changes.filter((_, i) => i % 2 === 1);
    expect(sentOf('email')).toEqual(newOnes.map((change) => change.email));
    expect(sentOf('phone_number')).toEqual(newOnes.map((change) => change.phoneNumber));
    expect(await batched.findProfiles('external_id', 'c248')).toMatchObject([{ external_id: 'c248' }]);
    expect(await batched.findProfiles('phone_number', '+14155550249')).toEqual([]);
    expect(klaviyo.callsOf('findProfiles')).toEqual([]);
  });

  it('keeps an email found in one query when its lower-cased form falls into the next', async () => {
    const { klaviyo, batched, queries } = batch();
    const changes = Array.from({ length: 99 }, (_, i) =>
      aChange({ externalId: `c${i}`, email: `c${i}@x.com` }),
    );
    const mixedCase = klaviyo.seed({ email: 'Mixed@Example.com' });
    changes.push(aChange({ externalId: 'mixed', email: 'Mixed@Example.com' }));
    await batched.prefetch(changes);

    const emailQueries = queries().filter(([field]) => field === 'email');
    expect(emailQueries.map(([, values]) => values.at(-1))).toEqual([
      'Mixed@Example.com',
      'mixed@example.com',
    ]);
    expect(await batched.findProfiles('email', 'Mixed@Example.com')).toEqual([mixedCase]);
  });

  it('asks Klaviyo again after a write for the answers it may have changed', async () => {
    const { klaviyo, batched } = batch();
    const { profiles, changes } = aMixedBatch(klaviyo);
    await batched.prefetch(Object.values(changes));

    await batched.updateProfile(profiles.known.id, { email: 'known.new@example.com' });
    expect(await batched.findProfiles('external_id', '1001')).toMatchObject([
      { email: 'known.new@example.com' },
    ]);
    await batched.importProfile({ external_id: '1003', email: 'first@example.com' });
    expect(await batched.findProfiles('email', 'first@example.com')).toMatchObject([{ external_id: '1003' }]);
    await batched.mergeProfiles(profiles.emailOnly.id, profiles.movedAway.id);
    expect(await batched.findProfiles('email', 'erp.old@example.com')).toEqual([]);
    expect(klaviyo.callsOf('findProfiles')).toEqual([
      ['external_id', '1001'],
      ['email', 'first@example.com'],
      ['email', 'erp.old@example.com'],
    ]);
    // Answers no write touched are still served from the batch.
    expect(await batched.findProfiles('phone_number', '+14155550103')).toEqual([]);
    expect(klaviyo.callsOf('findProfiles')).toHaveLength(3);
  });

  it('drops the answers naming a profile an import landed on', async () => {
    const { klaviyo, batched } = batch();
    const existing = klaviyo.seed({ email: 'before@example.com', phone_number: '+14155550105' });
    await batched.prefetch([
      aChange({ externalId: '2001', email: 'before@example.com', phoneNumber: undefined }),
    ]);
    expect(await batched.findProfiles('email', 'before@example.com')).toEqual([existing]);

    // Matched by its phone, the profile takes the imported email in place of the one answered.
    const imported = { external_id: '2002', email: 'after@example.com', phone_number: '+14155550105' };
    expect(await batched.importProfile(imported)).toMatchObject({
      profile: { id: existing.id },
      created: false,
    });
    expect(await batched.findProfiles('email', 'before@example.com')).toEqual([]);
    expect(klaviyo.callsOf('findProfiles')).toEqual([['email', 'before@example.com']]);
  });

  it('makes no query for a batch with nothing to look up', async () => {
    const { klaviyo, batched } = batch();
    await batched.prefetch([]);
    expect(klaviyo.calls).toEqual([]);
  });
});
