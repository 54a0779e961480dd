import { DELETION_ENDPOINT, DELETION_PATH } from '../../lib/klaviyo/limits.js';
import { isPlainObject } from './attributes.js';
import { ApiError, invalidPointer } from './errors.js';
import type { Reply } from './reply.js';
import type { ApiContext, ApiRoute } from './routes.js';

/**
 * Klaviyo's "Request Profile Deletion" (`POST /api/data-privacy-deletion-jobs`, scope
 * `data-privacy:write`, 3/s and 60/min): deletes every profile matching exactly one identifier,
 * the profile's `id`, its `email` or its `phone_number`; several (or none) is a 400. Klaviyo
 * deletes asynchronously and answers 202 with no body; the sandbox deletes at once, before it
 * answers. A request matching no profile is accepted all the same (what Klaviyo answers then is
 * unconfirmed; a deletion job is queued whatever it finds).
 */
export const DELETION_ROUTE_KEY = DELETION_ENDPOINT;

export const DELETION_PATHS: { pattern: RegExp; routes: ApiRoute[] }[] = [
  {
    pattern: new RegExp(`^${DELETION_PATH}$`),
    routes: [{ method: 'POST', key: DELETION_ROUTE_KEY, queryParams: [], handle: requestDeletion }],
  },
];

const PROFILE_POINTER = '/data/attributes/profile/data';

type DeletionTarget = { field: 'id' | 'email' | 'phone_number'; value: string };

function requestDeletion(ctx: ApiContext): Reply {
  const { field, value } = readDeletionDocument(ctx);
  for (const profile of ctx.store.withIdentifier(field, [value])) ctx.store.delete(profile.id);
  return { status: 202 };
}

function readDeletionDocument(ctx: ApiContext): DeletionTarget {
  if (!ctx.body.ok)
    throw new ApiError(400, 'parse_error', 'Malformed request.', 'The request body is not valid JSON.');
  const document = ctx.body.value;
  if (!isPlainObject(document) || !isPlainObject(document.data))
    throw invalidPointer('/data', "The body must be a JSON:API document with a 'data' object.");
  const { type, attributes } = document.data;
  if (type !== 'data-privacy-deletion-job')
    throw invalidPointer('/data/type', "'type' must be 'data-privacy-deletion-job'.");
  if (!isPlainObject(attributes) || !isPlainObject(attributes.profile))
    throw invalidPointer('/data/attributes/profile', "'profile' must be an object.");
  const profile = attributes.profile.data;
  if (!isPlainObject(profile)) throw invalidPointer(PROFILE_POINTER, "'data' must be an object.");
  if (profile.type !== 'profile')
    throw invalidPointer(`${PROFILE_POINTER}/type`, "'type' must be 'profile'.");
  // The spec requires `attributes` (where email and phone_number go), even when `id` names the profile.
  if (!isPlainObject(profile.attributes))
    throw invalidPointer(`${PROFILE_POINTER}/attributes`, "'attributes' must be an object.");
  const given: DeletionTarget[] = [];
  if (profile.id !== undefined && profile.id !== null) given.push(identifier('id', profile.id, '/id'));
  for (const field of ['email', 'phone_number'] as const) {
    const value = profile.attributes[field];
    if (value !== undefined && value !== null) given.push(identifier(field, value, `/attributes/${field}`));
  }
  const [target, ...others] = given;
  if (!target || others.length > 0) {
    throw invalidPointer(
      PROFILE_POINTER,
      `Exactly one identifier (id, email or phone_number) is required, got ${given.length}.`,
    );
  }
  return target;
}

function identifier(field: DeletionTarget['field'], value: unknown, pointer: string): DeletionTarget {
  if (typeof value !== 'string' || value === '')
    throw invalidPointer(`${PROFILE_POINTER}${pointer}`, `'${field}' must be a non-empty string.`);
  return { field, value };
}
