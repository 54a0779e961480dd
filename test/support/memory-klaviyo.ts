import type { Identifiers } from '../../lib/identity-change.js';
import { KlaviyoApiError } from '../../lib/klaviyo/errors.js';
import { pagedLookup } from '../../lib/klaviyo/lookup.js';
import type { IdentifierField, KlaviyoProfile, KlaviyoProfiles } from '../../lib/ports.js';

/**
 * Klaviyo's profiles in memory, at the port (no HTTP): for unit tests of the executor and the
 * worker. It keeps Klaviyo's rules that the executor depends on: each email, phone_number and
 * external_id belongs to at most one profile (409 duplicate_profile naming the holder), unknown ids
 * are 404, and merges are carried out later. It records every call and can be told to fail.
 */
export interface MemoryKlaviyoOptions {
  /**
   * A merge is carried out just before the N-th `getProfile` call after it answers (any id), as
   * Klaviyo merges asynchronously; 0 carries it out at once, Infinity never.
   */
  mergeAfterGets?: number;
  /**
   * Whether two emails differing in case clash. Klaviyo's filters compare case-sensitively; whether
   * its uniqueness does is unconfirmed (the sandbox: it does not). Lookups always match exactly.
   */
  emailsClashIgnoringCase?: boolean;
}

export type KlaviyoMethod = keyof KlaviyoProfiles;

export interface KlaviyoCall {
  method: KlaviyoMethod;
  args: unknown[];
}

export interface MemoryKlaviyo extends KlaviyoProfiles {
  /** Adds a profile as it stands (not checked, not recorded as a call). */
  seed(profile?: Partial<KlaviyoProfile>): KlaviyoProfile;
  /** A profile as stored now, without counting as a call. */
  stored(id: string): KlaviyoProfile | undefined;
  readonly calls: KlaviyoCall[];
  /** The arguments of each call of `method`, in order. */
  callsOf(method: KlaviyoMethod): unknown[][];
  /** The next `times` calls of `method` throw `error` and change nothing. */
  failNext(method: KlaviyoMethod, error: Error, times?: number): void;
  /** Merges accepted and not carried out yet. */
  readonly pendingMerges: { destinationId: string; sourceId: string }[];
}

const IDENTIFIERS = ['email', 'phone_number', 'external_id'] as const;

/** An error as the HTTP client raises it for Klaviyo's answer `status` with `code`. */
export function klaviyoError(
  status: number,
  code: string,
  {
    method = 'GET',
    path = '/api/profiles',
    meta,
  }: { method?: string; path?: string; meta?: Record<string, unknown> } = {},
): KlaviyoApiError {
  return new KlaviyoApiError(status, method, path, [
    { status, code, detail: `${code} (memory Klaviyo)`, meta },
  ]);
}

export function createMemoryKlaviyo(options: MemoryKlaviyoOptions = {}): MemoryKlaviyo {
  const { mergeAfterGets = 0, emailsClashIgnoringCase = false } = options;
  const profiles = new Map<string, KlaviyoProfile>();
  const calls: KlaviyoCall[] = [];
  const failures: { method: KlaviyoMethod; error: Error }[] = [];
  const merges: { destinationId: string; sourceId: string; getsLeft: number }[] = [];
  let nextId = 1;

  const copy = (profile: KlaviyoProfile | undefined) => profile && { ...profile };
  const clash = (field: (typeof IDENTIFIERS)[number], a: string | null, b: string) =>
    field === 'email' && emailsClashIgnoringCase ? a?.toLowerCase() === b.toLowerCase() : a === b;

  /** The first profile other than `exceptId` holding an identifier value being set (email first). */
  function holderOf(attributes: Identifiers, exceptId?: string) {
    for (const field of IDENTIFIERS) {
      const value = attributes[field];
      if (typeof value !== 'string') continue;
      const holder = [...profiles.values()].find((p) => p.id !== exceptId && clash(field, p[field], value));
      if (holder) return holder;
    }
    return undefined;
  }

  /** Records the call, then throws an injected failure if one is due. */
  function call(method: KlaviyoMethod, ...args: unknown[]) {
    calls.push({ method, args });
    const index = failures.findIndex((failure) => failure.method === method);
    if (index >= 0) throw failures.splice(index, 1)[0]?.error;
  }

  function write(id: string, attributes: Identifiers, method: string): KlaviyoProfile {
    const profile = profiles.get(id);
    if (!profile) throw klaviyoError(404, 'not_found', { method, path: `/api/profiles/${id}` });
    const holder = holderOf(attributes, id);
    if (holder) {
      throw klaviyoError(409, 'duplicate_profile', {
        method,
        path: `/api/profiles/${id}`,
        meta: { duplicate_profile_id: holder.id },
      });
    }
    for (const field of IDENTIFIERS) {
      const value = attributes[field];
      if (value !== undefined) profile[field] = value;
    }
    return { ...profile };
  }

  /** Destination first, the source fills its gaps; the source is deleted (the sandbox's rule). */
  function carryOut(merge: (typeof merges)[number]) {
    merges.splice(merges.indexOf(merge), 1);
    const destination = profiles.get(merge.destinationId);
    const source = profiles.get(merge.sourceId);
    if (!destination || !source) return;
    profiles.delete(source.id);
    for (const field of IDENTIFIERS) destination[field] ??= source[field];
  }

  const seed = (profile: Partial<KlaviyoProfile> = {}): KlaviyoProfile => {
    const seeded: KlaviyoProfile = {
      id: `01MEMORY${String(nextId++).padStart(4, '0')}`,
      email: null,
      phone_number: null,
      external_id: null,
      ...profile,
    };
    profiles.set(seeded.id, seeded);
    return { ...seeded };
  };

  return {
    seed,
    stored: (id) => copy(profiles.get(id)),
    calls,
    callsOf: (method) => calls.filter((entry) => entry.method === method).map((entry) => entry.args),
    failNext(method, error, times = 1) {
      for (let i = 0; i < times; i++) failures.push({ method, error });
    },
    get pendingMerges() {
      return merges.map(({ destinationId, sourceId }) => ({ destinationId, sourceId }));
    },

    async findProfiles(field: IdentifierField, value: string) {
      call('findProfiles', field, value);
      return [...profiles.values()].filter((profile) => profile[field] === value).map((p) => ({ ...p }));
    },

    // As the client does: emails in both cases, one recorded call a request of at most 100 values.
    findProfilesAmong: (field: IdentifierField, values: string[]) =>
      pagedLookup(field, values, async (page) => {
        call('findProfilesAmong', field, page);
        return [...profiles.values()]
          .filter((profile) => page.includes(profile[field] ?? ''))
          .map((p) => ({ ...p }));
      }),

    async getProfile(id) {
      call('getProfile', id);
      for (const merge of [...merges]) if (--merge.getsLeft <= 0) carryOut(merge);
      return copy(profiles.get(id));
    },

    async updateProfile(id, attributes) {
      call('updateProfile', id, attributes);
      return write(id, attributes, 'PATCH');
    },

    async importProfile(attributes) {
      call('importProfile', attributes);
      const existing = holderOf(attributes);
      if (existing) return { profile: write(existing.id, attributes, 'POST'), created: false };
      const profile = seed(Object.fromEntries(Object.entries(attributes).filter(([, v]) => v !== undefined)));
      return { profile, created: true };
    },

    async mergeProfiles(destinationId, sourceId) {
      call('mergeProfiles', destinationId, sourceId);
      for (const id of [destinationId, sourceId]) {
        if (!profiles.has(id))
          throw klaviyoError(404, 'not_found', { method: 'POST', path: '/api/profile-merge' });
      }
      const merge = { destinationId, sourceId, getsLeft: mergeAfterGets };
      merges.push(merge);
      if (mergeAfterGets <= 0) carryOut(merge);
    },

    // Klaviyo deletes asynchronously; here at once, which is what it comes to. An unknown id is
    // accepted as Klaviyo accepts a deletion matching nothing (unconfirmed: 202 either way).
    async requestProfileDeletion(profileId) {
      call('requestProfileDeletion', profileId);
      profiles.delete(profileId);
    },
  };
}
