import type { IdentifierField } from '../ports.js';

/**
 * A lookup of profiles by many values of one field, paged into `any(field,[…])` requests. One
 * place for the page size and for the case of emails, for every caller (worker, apply, bind,
 * duplicates).
 */

/** Values one lookup request may carry: a page holds at most 100 profiles, one per value at most. */
export const MAX_FILTER_VALUES = 100;

/**
 * The values a lookup sends for `values`, once each and in order: emails as given and lower-cased
 * too, since Klaviyo's filters compare case-sensitively and an address may be stored either way.
 */
export function lookupValues(field: IdentifierField, values: readonly string[]): string[] {
  return [...new Set(field === 'email' ? values.flatMap((value) => [value, value.toLowerCase()]) : values)];
}

/** The requests a lookup of `values` makes, in order: at most 100 values each (none for no value). */
export function lookupRequests(field: IdentifierField, values: readonly string[]): string[][] {
  const sent = lookupValues(field, values);
  const requests: string[][] = [];
  for (let start = 0; start < sent.length; start += MAX_FILTER_VALUES) {
    requests.push(sent.slice(start, start + MAX_FILTER_VALUES));
  }
  return requests;
}

/** What `request` finds for each of the lookup's requests, one after another, in order. */
export async function pagedLookup<Found>(
  field: IdentifierField,
  values: readonly string[],
  request: (values: string[]) => Promise<Found[]>,
): Promise<Found[]> {
  const found: Found[] = [];
  for (const page of lookupRequests(field, values)) found.push(...(await request(page)));
  return found;
}
