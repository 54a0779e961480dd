import type { ScannedProfile } from '../ports.js';
import { KNOWN_DOMAINS, type KnownDomains } from './known-domains.js';

/**
 * Finds profiles Klaviyo already holds twice: one carries a customer's external_id, the other
 * none, and the second is very likely the same person (a typo'd signup, a marketplace relay
 * address). Pure: the profiles in, candidate pairs out, each with the rule that matched, why,
 * and a confidence from 0 to 1. A pair's destination is always the customer's profile; two
 * profiles that both carry an external_id are never paired.
 */
/** The profiles compared: a page the scan port reads (lib/ports/klaviyo.ts). */
export type { ScannedProfile };

export type MatchRule = 'misspelt_domain' | 'local_part_typo' | 'marketplace_relay';

export interface CandidatePair {
  /** The customer's profile: survives a merge and keeps its external_id. */
  destination: ScannedProfile;
  /** The profile without an external_id: merged into the destination, then deleted by Klaviyo. */
  source: ScannedProfile;
  rule: MatchRule;
  why: string;
  confidence: number;
}

/** What the merchant says of relay addresses: this address was on an order of that customer. */
export interface RelayAddress {
  email: string;
  externalId: string;
}

/** Shorter local parts are too common for one typo to say "the same person". */
const MIN_LOCAL_PART_FOR_TYPO = 4;

interface Address {
  local: string;
  domain: string;
}

function addressOf(email: string | null): Address | undefined {
  const at = email?.lastIndexOf('@') ?? -1;
  if (!email || at <= 0 || at === email.length - 1) return undefined;
  return { local: email.slice(0, at).toLowerCase(), domain: email.slice(at + 1).toLowerCase() };
}

const nameOf = (value: string | null | undefined) => value?.trim().toLowerCase() || undefined;

/** Same first and last name (true), different (false), or unknown because a side has none. */
function sameNames(a: ScannedProfile, b: ScannedProfile): boolean | undefined {
  const first = [nameOf(a.first_name), nameOf(b.first_name)];
  const last = [nameOf(a.last_name), nameOf(b.last_name)];
  if (first.includes(undefined) || last.includes(undefined)) return undefined;
  return first[0] === first[1] && last[0] === last[1];
}

/**
 * Whether two strings are one edit apart (a letter inserted, left out, replaced, or two
 * neighbours swapped), and where they differ.
 */
export function oneEditApart(a: string, b: string): { at: number } | undefined {
  if (a === b || Math.abs(a.length - b.length) > 1) return undefined;
  let at = 0;
  while (at < a.length && at < b.length && a[at] === b[at]) at++;
  const [longer, shorter] = a.length >= b.length ? [a, b] : [b, a];
  if (longer.length !== shorter.length)
    return longer.slice(at + 1) === shorter.slice(at) ? { at } : undefined;
  if (a.slice(at + 1) === b.slice(at + 1)) return { at };
  const swapped = a[at] === b[at + 1] && a[at + 1] === b[at] && a.slice(at + 2) === b.slice(at + 2);
  return swapped ? { at } : undefined;
}

/** Every string one deletion away, and the string itself: two strings one edit apart share one. */
function deletionKeys(value: string): string[] {
  const keys = new Set([value]);
  for (let i = 0; i < value.length; i++) keys.add(value.slice(0, i) + value.slice(i + 1));
  return [...keys];
}

const isDigit = (char: string | undefined) => char !== undefined && char >= '0' && char <= '9';

export function findTypoPairs(
  profiles: readonly ScannedProfile[],
  known: KnownDomains = KNOWN_DOMAINS,
): CandidatePair[] {
  const customers = profiles.filter((profile) => profile.external_id);
  const others = profiles.filter((profile) => !profile.external_id);
  /** Customers by their exact address, and by domain + deletion key of the local part. */
  const byAddress = new Map<string, ScannedProfile[]>();
  const byKey = new Map<string, ScannedProfile[]>();
  const add = (map: Map<string, ScannedProfile[]>, key: string, profile: ScannedProfile) =>
    map.set(key, [...(map.get(key) ?? []), profile]);
  for (const customer of customers) {
    const address = addressOf(customer.email);
    if (!address) continue;
    add(byAddress, `${address.local}@${address.domain}`, customer);
    if (address.local.length < MIN_LOCAL_PART_FOR_TYPO) continue;
    for (const key of deletionKeys(address.local)) add(byKey, `${address.domain}/${key}`, customer);
  }

  const pairs: CandidatePair[] = [];
  for (const other of others) {
    const address = addressOf(other.email);
    if (!address) continue;
    const meant = known.misspeltDomains[address.domain];
    if (meant) {
      for (const customer of byAddress.get(`${address.local}@${meant}`) ?? []) {
        const names = sameNames(customer, other);
        if (names === false) continue;
        pairs.push({
          destination: customer,
          source: other,
          rule: 'misspelt_domain',
          why: `${address.domain} is a known misspelling of ${meant}; same local part${names ? ', same name' : ''}`,
          confidence: names ? 0.95 : 0.85,
        });
      }
      continue;
    }
    if (address.local.length < MIN_LOCAL_PART_FOR_TYPO) continue;
    const candidates = new Set(
      deletionKeys(address.local).flatMap((key) => byKey.get(`${address.domain}/${key}`) ?? []),
    );
    for (const customer of candidates) {
      const customerLocal = addressOf(customer.email)?.local ?? '';
      const edit = oneEditApart(address.local, customerLocal);
      if (!edit) continue;
      const names = sameNames(customer, other);
      if (names === false) continue;
      // anna1@ and anna2@ are as often two people (a family) as one typo.
      const digit = isDigit(address.local[edit.at]) || isDigit(customerLocal[edit.at]);
      const confidence = (names ? 0.8 : 0.5) * (digit ? 0.5 : 1);
      pairs.push({
        destination: customer,
        source: other,
        rule: 'local_part_typo',
        why: `${address.local} and ${customerLocal} at ${address.domain} are one keystroke apart${names ? '; same name' : '; no name to compare'}${digit ? '; they differ in a digit' : ''}`,
        confidence,
      });
    }
  }
  return pairs;
}

/**
 * Relay addresses (a new one per order on some marketplaces) matched to the customer through
 * what the merchant supplies: the address of each order and the customer it belongs to.
 */
export function findRelayPairs(
  profiles: readonly ScannedProfile[],
  relayAddresses: readonly RelayAddress[],
  known: KnownDomains = KNOWN_DOMAINS,
): CandidatePair[] {
  const customerOf = new Map(
    relayAddresses.map((relay) => [relay.email.trim().toLowerCase(), relay.externalId]),
  );
  const customers = new Map(
    profiles
      .filter((profile) => profile.external_id)
      .map((profile) => [profile.external_id as string, profile]),
  );
  const pairs: CandidatePair[] = [];
  for (const other of profiles) {
    if (other.external_id || !other.email) continue;
    const externalId = customerOf.get(other.email.toLowerCase());
    const customer = externalId === undefined ? undefined : customers.get(externalId);
    if (!customer || customer.id === other.id) continue;
    const domain = addressOf(other.email)?.domain ?? '';
    const isRelay = known.relayDomains.includes(domain);
    pairs.push({
      destination: customer,
      source: other,
      rule: 'marketplace_relay',
      why: `the merchant's file puts ${other.email} on an order of customer ${externalId}${isRelay ? ` (${domain} is a known relay domain)` : ''}`,
      confidence: isRelay ? 0.95 : 0.85,
    });
  }
  return pairs;
}
