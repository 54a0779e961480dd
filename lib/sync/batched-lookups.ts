import type { IdentityChange } from '../identity-change.js';
import type { IdentifierField, KlaviyoProfile, KlaviyoProfiles } from '../ports.js';
import { isOurs, type Lookup, lookupOrder } from './identifiers.js';

/**
 * Resolves many customers at the price of a few requests. Before a batch is worked through, the
 * lookups its changes will need are made up front with `any(field,[…])` queries: one field per
 * query (external_id, then email, then phone: docs/applying-changes.md's order), at most 100 values a query,
 * and only the changes still unresolved go on to the next field. The executor then asks its
 * lookups one by one as before, and they are answered from what the batch already learned.
 *
 * An answer stays only as long as nothing this client wrote could have changed it: a write drops
 * the answers that name the profile written or a value it wrote.
 */
/** Lookups in the order we resolve: each field's query carries every value of that field. */
const FIELD_ORDER: IdentifierField[] = ['external_id', 'email', 'phone_number'];

/** Emails match whatever their case (Klaviyo's filters compare case-sensitively). */
const keyOf = (field: IdentifierField, value: string) =>
  `${field}:${field === 'email' ? value.toLowerCase() : value}`;

export interface BatchedLookups extends KlaviyoProfiles {
  /** Makes the lookups `changes` will need (leave out customers whose profile is known already). */
  prefetch(changes: readonly IdentityChange[]): Promise<void>;
}

export function withBatchedLookups(klaviyo: KlaviyoProfiles): BatchedLookups {
  const answers = new Map<string, KlaviyoProfile[]>();

  function forget(predicate: (key: string, profiles: KlaviyoProfile[]) => boolean) {
    for (const [key, profiles] of answers) if (predicate(key, profiles)) answers.delete(key);
  }
  const forgetProfile = (...ids: string[]) =>
    forget((_, profiles) => profiles.some((profile) => ids.includes(profile.id)));
  const forgetValues = (attributes: Partial<Record<IdentifierField, string | null | undefined>>) => {
    const keys = new Set(
      Object.entries(attributes).flatMap(([field, value]) =>
        value ? [keyOf(field as IdentifierField, value)] : [],
      ),
    );
    forget((key) => keys.has(key));
  };

  /** One field's values, in as few requests as the paged lookup makes. */
  async function queryField(field: IdentifierField, values: string[]) {
    const found = await klaviyo.findProfilesAmong(field, values);
    for (const value of values) {
      const key = keyOf(field, value);
      if (!answers.has(key)) answers.set(key, []);
    }
    // An email and its lower-cased form share one answer, and may fall into two requests: both
    // add to it (once, should both find the same profile).
    for (const profile of found) {
      const value = profile[field as Exclude<IdentifierField, 'id'>];
      if (!value) continue;
      const key = keyOf(field, value);
      const answer = answers.get(key) ?? [];
      if (!answer.some(({ id }) => id === profile.id)) answers.set(key, [...answer, profile]);
    }
  }

  return {
    ...klaviyo,

    async prefetch(changes) {
      const ordered = changes.map((change) => ({ change, lookups: lookupOrder(change) }));
      for (const field of FIELD_ORDER) {
        // A change whose profile the answers so far find has no lookup left to make.
        const wanted = ordered.flatMap(({ change, lookups }) =>
          lookupsStillToMake(change, lookups)
            .filter((lookup) => lookup.field === field)
            .map((lookup) => lookup.value),
        );
        await queryField(field, wanted);
      }
    },

    async findProfiles(field, value) {
      const known = answers.get(keyOf(field, value));
      if (known) return known;
      return klaviyo.findProfiles(field, value);
    },

    async updateProfile(id, attributes) {
      forgetProfile(id);
      forgetValues(attributes);
      return klaviyo.updateProfile(id, attributes);
    },

    async importProfile(attributes) {
      forgetValues(attributes);
      const imported = await klaviyo.importProfile(attributes);
      // It may have landed on a profile found earlier by another of its values.
      forgetProfile(imported.profile.id);
      return imported;
    },

    async mergeProfiles(destinationId, sourceId) {
      forgetProfile(destinationId, sourceId);
      return klaviyo.mergeProfiles(destinationId, sourceId);
    },
  };

  /**
   * The lookups resolution would make for `change` (its `lookupOrder`) that no answer covers yet:
   * in order, up to the first answer that finds a profile of the customer's (none once answered).
   */
  function lookupsStillToMake(change: IdentityChange, lookups: readonly Lookup[]): Lookup[] {
    const missing: Lookup[] = [];
    for (const lookup of lookups) {
      const answer = answers.get(keyOf(lookup.field, lookup.value));
      if (!answer) missing.push(lookup);
      else if (answer.some((profile) => isOurs({ lookup, profile }, change.externalId))) return missing;
    }
    return missing;
  }
}
