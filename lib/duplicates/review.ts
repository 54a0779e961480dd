import { lookupRequests } from '../klaviyo/lookup.js';
import type { IdentifierField } from '../ports.js';
import { KNOWN_DOMAINS, type KnownDomains } from './known-domains.js';
import {
  type CandidatePair,
  findRelayPairs,
  findTypoPairs,
  type RelayAddress,
  type ScannedProfile,
} from './match.js';

/**
 * What `identity-sync duplicates` makes of the rules' pairs, decided from plain data: which pairs
 * `--apply` would merge, and, when only a customer export is read, which profiles to look up.
 */

/** Whether `--apply` merges a pair: yes, or why not. */
export type MergeVerdict = 'merge' | 'below_min_confidence' | 'ambiguous_source';

export interface ReviewedPair extends CandidatePair {
  verdict: MergeVerdict;
}

/**
 * Every candidate pair among `profiles`, surest first. A pair reaches `--apply` at or above
 * `minConfidence`, unless its source pairs with more than one customer: whose duplicate it is
 * then is for a person to say.
 */
export function reviewPairs(
  profiles: readonly ScannedProfile[],
  relayAddresses: readonly RelayAddress[],
  minConfidence: number,
  known: KnownDomains = KNOWN_DOMAINS,
): ReviewedPair[] {
  const pairs = surestOfEach([
    ...findTypoPairs(profiles, known),
    ...findRelayPairs(profiles, relayAddresses, known),
  ]);
  const customersOf = new Map<string, Set<string>>();
  for (const { source, destination } of pairs) {
    customersOf.set(source.id, (customersOf.get(source.id) ?? new Set()).add(destination.id));
  }
  return pairs.sort(surestFirst).map((pair) => ({
    ...pair,
    verdict:
      (customersOf.get(pair.source.id)?.size ?? 0) > 1
        ? 'ambiguous_source'
        : pair.confidence >= minConfidence
          ? 'merge'
          : 'below_min_confidence',
  }));
}

/** One pair per destination and source, the surest when two rules matched them. */
function surestOfEach(pairs: CandidatePair[]): CandidatePair[] {
  const byProfiles = new Map<string, CandidatePair>();
  for (const pair of pairs) {
    const key = `${pair.destination.id}/${pair.source.id}`;
    const kept = byProfiles.get(key);
    if (!kept || pair.confidence > kept.confidence) byProfiles.set(key, pair);
  }
  return [...byProfiles.values()];
}

/** Highest confidence first, then by customer and profile, so a report reads the same every run. */
const surestFirst = (a: CandidatePair, b: CandidatePair) =>
  b.confidence - a.confidence ||
  String(a.destination.external_id).localeCompare(String(b.destination.external_id)) ||
  a.source.id.localeCompare(b.source.id);

/** What merging the pair does in Klaviyo, in words for the report. */
export const mergeEffect = ({ destination, source }: CandidatePair) =>
  `merge profile ${source.id} into ${destination.id} (customer ${destination.external_id}): ` +
  `${destination.id} keeps its external_id and takes ${source.id}'s data; Klaviyo then deletes ${source.id}`;

/** Profiles looked up in one request (one page of the run): those whose `field` is any of `values` (at most 100). */
export interface ProfileLookup {
  field: IdentifierField;
  values: string[];
}

/**
 * The lookups that find a customer export's pairs without reading the whole account: each
 * customer's email, the same address at each known misspelling of its domain, the relay addresses
 * of the merchant's file and the customers they name. Emails as given and lower-cased (Klaviyo's
 * filters compare case-sensitively). A typo in the local part cannot be looked up: only a scan of
 * the account finds those.
 */
export function customerLookups(
  emails: readonly string[],
  relayAddresses: readonly RelayAddress[],
  known: KnownDomains = KNOWN_DOMAINS,
): ProfileLookup[] {
  const misspellingsOf = new Map<string, string[]>();
  for (const [typo, meant] of Object.entries(known.misspeltDomains)) {
    misspellingsOf.set(meant, [...(misspellingsOf.get(meant) ?? []), typo]);
  }
  const addresses: string[] = [];
  for (const email of emails) {
    addresses.push(email);
    const at = email.lastIndexOf('@');
    const local = email.slice(0, at);
    for (const typo of misspellingsOf.get(email.slice(at + 1).toLowerCase()) ?? []) {
      addresses.push(`${local}@${typo}`);
    }
  }
  addresses.push(...relayAddresses.map((relay) => relay.email));
  const externalIds = relayAddresses.map((relay) => relay.externalId);
  return [...lookupsOf('email', addresses), ...lookupsOf('external_id', externalIds)];
}

/** One lookup a request, as the paged lookup would make them: each is a page the run can resume at. */
const lookupsOf = (field: IdentifierField, values: string[]): ProfileLookup[] =>
  lookupRequests(field, values).map((page) => ({ field, values: page }));
