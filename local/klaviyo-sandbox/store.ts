import { randomBytes } from 'node:crypto';
import { duplicateProfile, notFound } from './errors.js';
import {
  IDENTIFIERS,
  type Identifier,
  type IdentifierQuery,
  LOCATION_FIELDS,
  type Profile,
  type ProfileChanges,
  type ProfileLocation,
  STRING_ATTRIBUTES,
} from './types.js';

const CROCKFORD_BASE32 = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** A 26-character ULID-like id (10 time characters + 16 random), the shape of Klaviyo profile ids. */
export function generateProfileId(nowMs: number): string {
  let time = '';
  for (let rest = nowMs, i = 0; i < 10; i++, rest = Math.floor(rest / 32)) {
    time = CROCKFORD_BASE32.charAt(rest % 32) + time;
  }
  const random = Array.from(randomBytes(16), (byte) => CROCKFORD_BASE32.charAt(byte % 32)).join('');
  return time + random;
}

/** Klaviyo's timestamp format: ISO 8601 with microseconds and an explicit UTC offset. */
export function formatTimestamp(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000+00:00');
}

function emptyLocation(): ProfileLocation {
  return Object.fromEntries(LOCATION_FIELDS.map((field) => [field, null])) as ProfileLocation;
}

const indexKey = (name: Identifier, value: string) => `${name}\u0000${value}`;

/**
 * In-memory profiles. Enforces Klaviyo's invariant that each identifier value belongs to at most
 * one profile (exact, case-sensitive comparison). Returns copies so callers cannot alter stored state.
 * Identifiers are indexed, so lookups and uniqueness checks stay cheap with 100,000s of profiles.
 */
export class ProfileStore {
  readonly #profiles = new Map<string, Profile>();
  /** `name\0value` → the id of the profile holding that identifier value. */
  readonly #byIdentifier = new Map<string, string>();
  /** Creation order, so indexed lookups answer in the same order as a scan. */
  readonly #rank = new Map<string, number>();
  #created = 0;
  readonly #clock: () => number;

  constructor(clock: () => number) {
    this.#clock = clock;
  }

  list(): Profile[] {
    return this.filter(() => true);
  }

  /** Copies of the profiles that match: copying only matches keeps lookups cheap in large stores. */
  filter(predicate: (profile: Profile) => boolean): Profile[] {
    return [...this.#profiles.values()].filter(predicate).map((profile) => structuredClone(profile));
  }

  /** Copies of the profiles whose identifier `name` is one of `values`, in creation order (indexed). */
  withIdentifier(name: Identifier | 'id', values: Iterable<string>): Profile[] {
    const ids = new Set<string>();
    for (const value of values) {
      const id = name === 'id' ? value : this.#byIdentifier.get(indexKey(name, value));
      if (id !== undefined && this.#profiles.has(id)) ids.add(id);
    }
    return [...ids]
      .sort((a, b) => (this.#rank.get(a) ?? 0) - (this.#rank.get(b) ?? 0))
      .map((id) => structuredClone(this.#profiles.get(id) as Profile));
  }

  get(id: string): Profile | undefined {
    const profile = this.#profiles.get(id);
    return profile && structuredClone(profile);
  }

  find(query: IdentifierQuery): Profile | undefined {
    const wanted = IDENTIFIERS.filter((name) => query[name] !== undefined);
    const [first] = wanted;
    if (first === undefined) return undefined;
    const [match] = this.withIdentifier(first, [query[first] as string]);
    return match && wanted.every((name) => match[name] === query[name]) ? match : undefined;
  }

  /** The first profile other than `exceptId` holding one of the identifier values being set (email first). */
  holderOf(changes: ProfileChanges, exceptId?: string): Profile | undefined {
    for (const name of IDENTIFIERS) {
      const value = changes[name];
      if (typeof value !== 'string') continue;
      const holder = this.find({ [name]: value });
      if (holder && holder.id !== exceptId) return holder;
    }
    return undefined;
  }

  create(changes: ProfileChanges, id = generateProfileId(this.#clock())): Profile {
    if (this.#profiles.has(id)) throw duplicateProfile(id);
    this.#assertIdentifiersFree(changes);
    const now = formatTimestamp(this.#clock());
    const profile: Profile = {
      id,
      email: null,
      phone_number: null,
      external_id: null,
      first_name: null,
      last_name: null,
      organization: null,
      locale: null,
      title: null,
      image: null,
      created: now,
      updated: now,
      last_event_date: null,
      location: emptyLocation(),
      properties: {},
    };
    this.#apply(profile, changes);
    this.#profiles.set(id, profile);
    this.#rank.set(id, this.#created++);
    return structuredClone(profile);
  }

  /** Applies changes and bumps `updated`; throws 404 for an unknown id, 409 when an identifier is taken. */
  update(id: string, changes: ProfileChanges): Profile {
    const profile = this.#profiles.get(id);
    if (!profile) throw notFound(`A profile with id '${id}' does not exist.`);
    this.#assertIdentifiersFree(changes, id);
    this.#apply(profile, changes);
    profile.updated = formatTimestamp(this.#clock());
    return structuredClone(profile);
  }

  delete(id: string): boolean {
    const profile = this.#profiles.get(id);
    if (profile) this.#unindex(profile);
    this.#rank.delete(id);
    return this.#profiles.delete(id);
  }

  /**
   * Merges `sourceId` into `destinationId`: the destination survives, the source is deleted.
   * Returns the merged destination, or undefined (changing nothing) when either profile no longer
   * exists or both ids are the same.
   *
   * Which values win on conflicting fields is unconfirmed at Klaviyo; the sandbox's rule is
   * "destination first, source fills the gaps":
   * - string attributes (the identifiers email, phone_number and external_id included) and
   *   last_event_date keep the destination's non-null value; the destination's nulls take the
   *   source's value. The source's identifiers become free when it is deleted, so moving them
   *   cannot break uniqueness.
   * - location: field by field, by the same rule.
   * - properties: merged key by key, the destination's value winning for a key both hold.
   * - id and created stay the destination's; updated is bumped.
   */
  merge(destinationId: string, sourceId: string): Profile | undefined {
    const destination = this.#profiles.get(destinationId);
    const source = this.#profiles.get(sourceId);
    if (!destination || !source || destination === source) return undefined;
    this.delete(sourceId);
    this.#unindex(destination);
    for (const name of [...STRING_ATTRIBUTES, 'last_event_date'] as const) {
      destination[name] ??= source[name];
    }
    this.#index(destination);
    for (const field of LOCATION_FIELDS) {
      // Indexing through a widened type: TypeScript cannot pair the key and value types of a union key.
      const location: Record<string, unknown> = destination.location;
      location[field] ??= source.location[field];
    }
    destination.properties = { ...source.properties, ...destination.properties };
    destination.updated = formatTimestamp(this.#clock());
    return structuredClone(destination);
  }

  clear(): void {
    this.#profiles.clear();
    this.#byIdentifier.clear();
    this.#rank.clear();
  }

  /** Applies changes, keeping the identifier index in step. */
  #apply(profile: Profile, changes: ProfileChanges): void {
    this.#unindex(profile);
    applyChanges(profile, changes);
    this.#index(profile);
  }

  #index(profile: Profile): void {
    for (const name of IDENTIFIERS) {
      const value = profile[name];
      if (value !== null) this.#byIdentifier.set(indexKey(name, value), profile.id);
    }
  }

  #unindex(profile: Profile): void {
    for (const name of IDENTIFIERS) {
      const value = profile[name];
      if (value !== null) this.#byIdentifier.delete(indexKey(name, value));
    }
  }

  #assertIdentifiersFree(changes: ProfileChanges, exceptId?: string): void {
    const holder = this.holderOf(changes, exceptId);
    if (holder) throw duplicateProfile(holder.id);
  }
}

/**
 * String attributes are replaced; `location` and `properties` are merged key by key (so an update
 * naming one custom property keeps the others), and null clears them entirely.
 */
function applyChanges(profile: Profile, changes: ProfileChanges): void {
  for (const name of STRING_ATTRIBUTES) {
    const value = changes[name];
    if (value !== undefined) profile[name] = value;
  }
  if (changes.location !== undefined) {
    profile.location =
      changes.location === null ? emptyLocation() : { ...profile.location, ...changes.location };
  }
  if (changes.properties !== undefined) {
    profile.properties = changes.properties === null ? {} : { ...profile.properties, ...changes.properties };
  }
}
