import { ApiKeySession, DataPrivacyApi, ProfilesApi } from 'klaviyo-api';
import type { Identifiers } from '../../lib/identity-change.js';
import type { KlaviyoClientOptions } from '../../lib/klaviyo/client.js';
import {
  KlaviyoApiError,
  type KlaviyoErrorDetail,
  KlaviyoUnreachableError,
} from '../../lib/klaviyo/errors.js';
import { pagedLookup } from '../../lib/klaviyo/lookup.js';
import type { IdentifierField, KlaviyoProfile, KlaviyoProfiles } from '../../lib/ports.js';

/**
 * The worker's Klaviyo client written on Klaviyo's official SDK (`klaviyo-api`, axios), for the
 * cold-load benchmark only: bench/cold-load.ts bundles the worker with this module in place of
 * lib/klaviyo/client.ts, so the two workers differ in their Klaviyo client alone. It keeps the
 * port's contract (pacing, typed errors); retries are the SDK's own.
 */
const PROFILE_FIELDS: ('email' | 'phone_number' | 'external_id')[] = ['email', 'phone_number', 'external_id'];

/** The SDK's several profile resource classes share these members. */
interface SdkProfile {
  id?: string | null;
  attributes?: object;
}

const toProfile = (resource: SdkProfile): KlaviyoProfile => {
  const attributes = resource.attributes as { email?: string; phoneNumber?: string; externalId?: string };
  return {
    id: resource.id ?? '',
    email: attributes?.email ?? null,
    phone_number: attributes?.phoneNumber ?? null,
    external_id: attributes?.externalId ?? null,
  };
};

/** The SDK's attribute names are camelCase; null clears, as in the port. */
const sdkAttributes = (attributes: Identifiers) => ({
  ...(attributes.email !== undefined && { email: attributes.email }),
  ...(attributes.phone_number !== undefined && { phoneNumber: attributes.phone_number }),
  ...(attributes.external_id !== undefined && { externalId: attributes.external_id }),
});

const quote = (value: string) => `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;

export function createKlaviyoClient(options: KlaviyoClientOptions): KlaviyoProfiles {
  const profiles = new ProfilesApi(new ApiKeySession(options.apiKey));
  profiles.basePath = options.baseUrl.replace(/\/+$/, '');
  const dataPrivacy = new DataPrivacyApi(new ApiKeySession(options.apiKey));
  dataPrivacy.basePath = profiles.basePath;

  /** Paces like our client, then maps the SDK's (axios's) errors to the port's. */
  async function call<T>(endpoint: string, request: () => Promise<T>): Promise<T> {
    await options.pacer?.wait(endpoint);
    try {
      return await request();
    } catch (error) {
      const response = (error as { response?: { status: number; data?: { errors?: KlaviyoErrorDetail[] } } })
        .response;
      const [method = '', path = ''] = endpoint.split(' ');
      if (!response) throw new KlaviyoUnreachableError(method, path, error);
      throw new KlaviyoApiError(response.status, method, path, response.data?.errors ?? []);
    }
  }

  const findAmong = (field: IdentifierField, values: string[]) =>
    pagedLookup(field, values, (page) => findPage(field, page));
  /** One request of the paged lookup (lib/klaviyo/lookup.ts): at most 100 values, each once. */
  const findPage = async (field: IdentifierField, unique: string[]) => {
    const filter =
      unique.length === 1
        ? `equals(${field},${quote(unique[0] as string)})`
        : `any(${field},[${unique.map(quote).join(',')}])`;
    const { body } = await call('GET /api/profiles', () =>
      profiles.getProfiles({ filter, fieldsProfile: PROFILE_FIELDS, pageSize: 100 }),
    );
    return (body.data ?? []).map((resource) => toProfile(resource));
  };

  return {
    findProfiles: (field, value) => findAmong(field, [value]),
    findProfilesAmong: findAmong,
    async getProfile(id) {
      try {
        const { body } = await call('GET /api/profiles/{id}', () =>
          profiles.getProfile(id, { fieldsProfile: PROFILE_FIELDS }),
        );
        return toProfile(body.data);
      } catch (error) {
        if (error instanceof KlaviyoApiError && error.status === 404) return undefined;
        throw error;
      }
    },
    async updateProfile(id, attributes) {
      const { body } = await call('PATCH /api/profiles/{id}', () =>
        profiles.updateProfile(id, { data: { type: 'profile', id, attributes: sdkAttributes(attributes) } }),
      );
      return toProfile(body.data);
    },
    async importProfile(attributes) {
      const { body, response } = await call('POST /api/profile-import', () =>
        profiles.createOrUpdateProfile({ data: { type: 'profile', attributes: sdkAttributes(attributes) } }),
      );
      return { profile: toProfile(body.data), created: response.status === 201 };
    },
    async mergeProfiles(destinationId, sourceId) {
      await call('POST /api/profile-merge', () =>
        profiles.mergeProfiles({
          data: {
            type: 'profile-merge',
            id: destinationId,
            relationships: { profiles: { data: [{ type: 'profile', id: sourceId }] } },
          },
        }),
      );
    },
    async requestProfileDeletion(profileId) {
      await call('POST /api/data-privacy-deletion-jobs', () =>
        dataPrivacy.requestProfileDeletion({
          data: {
            type: 'data-privacy-deletion-job',
            attributes: { profile: { data: { type: 'profile', id: profileId, attributes: {} } } },
          },
        }),
      );
    },
  };
}
