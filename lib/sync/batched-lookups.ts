import type { IdentityChange } from '../identity-change.js';
import type { IdentifierField, KlaviyoProfile, KlaviyoProfiles } from '../ports.js';
import { lookupOrder } from './plan.js';

/**
 * Resolves many customers at the price of a few requests. Before a batch is worked through, the
 * lookups its changes will need are made up front with `any(field,[…])` queries: one field per
 * query (external_id, then email, then phone: the README's order), at most 100 values a query,
 * and only the changes still unresolved go on to the next field. The executor then asks its
 * lookups one by one as before, and they are answered from what the batch already learned.
 *
 * An answer stays only as long as nothing this client wrote could have changed it: a write drops
 * the answers that name the profile written or a value it wrote.
 */
export const MAX_VALUES_PER_QUERY = 100;

/** Lookups in the order we resolve: each field's query carries every value of that field. */
const FIELD_ORDER: IdentifierField[] = ['external_id', 'email', 'phone_number'];

/** Emails match whatever their case (Klaviyo's filters compare case-sensitively). */
const keyOf = (field: IdentifierField, value: string) =>
  `${field}:${field === 'email' ? value.toLowerCase() : value}`;

export interface BatchedLookups extends KlaviyoProfiles {
  /** Makes the lookups `changes` need; a change whose customer `isKnown` needs none. */
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

  /** One field's values, as given and (emails) lower-cased too, at most 100 a query. */
  async function queryField(field: IdentifierField, values: string[]) {
    const sent = [
      ...new Set(values.flatMap((value) => (field === 'email' ? [value, value.toLowerCase()] : [value]))),
    ];
    for (let start = 0; start < sent.length; start += MAX_VALUES_PER_QUERY) {
      const chunk = sent.slice(start, start + MAX_VALUES_PER_QUERY);
      const found = await klaviyo.findProfilesAmong(field, chunk);
      for (const value of chunk) answers.set(keyOf(field, value), []);
      for (const profile of found) {
        const value = profile[field as Exclude<IdentifierField, 'id'>];
        if (!value) continue;
        const key = keyOf(field, value);
        answers.set(key, [...(answers.get(key) ?? []), profile]);
      }
    }
  }

  return {
    ...klaviyo,

    async prefetch(changes) {
      let unresolved = [...changes];
      for (const field of FIELD_ORDER) {
        const wanted = unresolved.flatMap((change) =>
          lookupOrder(change)
            .filter((lookup) => lookup.field === field && !answers.has(keyOf(field, lookup.value)))
            .map((lookup) => lookup.value),
        );
        await queryField(field, wanted);
        unresolved = unresolved.filter((change) => !isResolvedByAnswers(change));
        if (unresolved.length === 0) return;
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
      return klaviyo.importProfile(attributes);
    },

    async mergeProfiles(destinationId, sourceId) {
      forgetProfile(destinationId, sourceId);
      return klaviyo.mergeProfiles(destinationId, sourceId);
    },
  };

  /** Whether what is known already finds a profile that is the customer's (as resolution would stop). */
  function isResolvedByAnswers(change: IdentityChange): boolean {
    return lookupOrder(change).some((lookup) =>
      (answers.get(keyOf(lookup.field, lookup.value)) ?? []).some(
        (profile) =>
          lookup.key === 'external_id' ||
          profile.external_id === null ||
          profile.external_id === change.externalId,
      ),
    );
  }
}
