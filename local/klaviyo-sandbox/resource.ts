import { invalidParameter } from './errors.js';
import { LOCATION_FIELDS, type Profile, STRING_ATTRIBUTES } from './types.js';

/** Attribute names in the order of the OpenAPI document's profile resource. */
const ATTRIBUTE_NAMES = [
  ...STRING_ATTRIBUTES,
  'created',
  'updated',
  'last_event_date',
  'location',
  'properties',
] as const satisfies readonly (keyof Profile)[];

const SPARSE_FIELD_NAMES: ReadonlySet<string> = new Set([
  'id',
  ...ATTRIBUTE_NAMES,
  ...LOCATION_FIELDS.map((field) => `location.${field}`),
]);

/**
 * Reads `fields[profile]` (comma-separated). Only the attributes the sandbox models are accepted;
 * subscriptions and predictive_analytics are not.
 */
export function parseSparseFields(query: URLSearchParams): ReadonlySet<string> | undefined {
  const raw = query.get('fields[profile]');
  if (raw === null) return undefined;
  const fields = raw.split(',').map((field) => field.trim());
  const unknown = fields.find((field) => !SPARSE_FIELD_NAMES.has(field));
  if (unknown !== undefined) {
    throw invalidParameter(
      'fields[profile]',
      `'${unknown}' is not a valid field for the resource 'profile'.`,
    );
  }
  return new Set(fields);
}

export function profileUrl(baseUrl: string, id: string): string {
  return `${baseUrl}/api/profiles/${id}`;
}

/** The JSON:API resource object for a profile, limited to `fields` when a sparse fieldset was asked for. */
export function profileResource(profile: Profile, baseUrl: string, fields?: ReadonlySet<string>) {
  return {
    type: 'profile',
    id: profile.id,
    attributes: fields ? sparseAttributes(profile, fields) : allAttributes(profile),
    links: { self: profileUrl(baseUrl, profile.id) },
  };
}

function allAttributes(profile: Profile): Record<string, unknown> {
  return Object.fromEntries(ATTRIBUTE_NAMES.map((name) => [name, profile[name]]));
}

function sparseAttributes(profile: Profile, fields: ReadonlySet<string>): Record<string, unknown> {
  const attributes: Record<string, unknown> = {};
  for (const name of ATTRIBUTE_NAMES) {
    if (fields.has(name)) attributes[name] = profile[name];
  }
  // `location.city` and friends pick single location fields (unless the whole location was asked for).
  const locationFields = LOCATION_FIELDS.filter((field) => fields.has(`location.${field}`));
  if (!fields.has('location') && locationFields.length > 0) {
    attributes.location = Object.fromEntries(locationFields.map((field) => [field, profile.location[field]]));
  }
  return attributes;
}
