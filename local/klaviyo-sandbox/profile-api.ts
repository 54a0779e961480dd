import { isPlainObject, parseAttributes, requireIdentifier } from './attributes.js';
import { BULK_IMPORT_PATHS } from './bulk-import-api.js';
import { DELETION_PATHS } from './deletion-api.js';
import { ApiError, invalidParameter, invalidPointer, methodNotAllowed, notFound } from './errors.js';
import { parseProfileFilter } from './filter.js';
import { pageOf } from './paging.js';
import type { ParsedBody, Reply } from './reply.js';
import { parseSparseFields, profileResource, profileUrl } from './resource.js';
import type { ApiContext, ApiRoute } from './routes.js';
import type { ProfileStore } from './store.js';
import type { Profile, ProfileChanges } from './types.js';

export interface MatchedRoute {
  route: ApiRoute;
  id: string;
}

const FIELDS_ONLY = ['fields[profile]'];
export const MERGE_ROUTE_KEY = 'POST /api/profile-merge';
const LIST_PARAMS = ['filter', 'page[size]', 'page[cursor]', 'fields[profile]'];

// Exact patterns: since revision 2024-10-15 Klaviyo paths have no trailing slash, so `/api/profiles/` is a 404.
const PATHS: { pattern: RegExp; routes: ApiRoute[] }[] = [
  {
    pattern: /^\/api\/profiles$/,
    routes: [
      { method: 'GET', key: 'GET /api/profiles', queryParams: LIST_PARAMS, handle: listProfiles },
      { method: 'POST', key: 'POST /api/profiles', queryParams: FIELDS_ONLY, handle: createProfile },
    ],
  },
  {
    pattern: /^\/api\/profiles\/([^/]+)$/,
    routes: [
      { method: 'GET', key: 'GET /api/profiles/{id}', queryParams: FIELDS_ONLY, handle: getProfile },
      { method: 'PATCH', key: 'PATCH /api/profiles/{id}', queryParams: FIELDS_ONLY, handle: updateProfile },
    ],
  },
  {
    pattern: /^\/api\/profile-import$/,
    routes: [
      { method: 'POST', key: 'POST /api/profile-import', queryParams: FIELDS_ONLY, handle: importProfile },
    ],
  },
  {
    pattern: /^\/api\/profile-merge$/,
    routes: [{ method: 'POST', key: MERGE_ROUTE_KEY, queryParams: FIELDS_ONLY, handle: mergeProfiles }],
  },
  ...BULK_IMPORT_PATHS,
  ...DELETION_PATHS,
];

/** Finds the operation for a request; throws 404 for unknown paths and 405 for a known path's other methods. */
export function matchApiRoute(method: string, path: string): MatchedRoute {
  for (const { pattern, routes } of PATHS) {
    const match = pattern.exec(path);
    if (!match) continue;
    const route = routes.find((candidate) => candidate.method === method);
    if (!route)
      throw methodNotAllowed(
        method,
        routes.map((candidate) => candidate.method),
      );
    return { route, id: decodeURIComponent(match[1] ?? '') };
  }
  throw notFound(`No API route matches '${path}'.`);
}

export function runApiRoute(route: ApiRoute, ctx: ApiContext): Reply {
  // Unmodelled parameters (sort, include, additional-fields…) are refused rather than silently ignored.
  for (const name of ctx.query.keys()) {
    if (!route.queryParams.includes(name)) {
      throw invalidParameter(name, `'${name}' is not a query parameter the Klaviyo sandbox supports here.`);
    }
  }
  return route.handle(ctx);
}

function listProfiles(ctx: ApiContext): Reply {
  const fields = parseSparseFields(ctx.query);
  const filter = ctx.query.get('filter');
  const predicate = filter === null ? () => true : parseProfileFilter(filter);
  const matches =
    'lookup' in predicate && predicate.lookup
      ? ctx.store.withIdentifier(predicate.lookup.field, predicate.lookup.values).filter(predicate)
      : ctx.store.filter(predicate);
  const { items, links } = pageOf(ctx, '/api/profiles', matches);
  const data = items.map((profile) => profileResource(profile, ctx.baseUrl, fields));
  return { status: 200, body: { data, links } };
}

function getProfile(ctx: ApiContext): Reply {
  const fields = parseSparseFields(ctx.query);
  const profile = ctx.store.get(ctx.id);
  if (!profile) throw profileNotFound(ctx.id);
  return { status: 200, body: singleDocument(profile, ctx, fields) };
}

function updateProfile(ctx: ApiContext): Reply {
  const fields = parseSparseFields(ctx.query);
  const document = readProfileDocument(ctx.body);
  if (document.id === undefined) throw invalidPointer('/data/id', "'id' is required.");
  // JSON:API answers 409 when the body's id differs from the URL's (the Klaviyo spec does not say).
  if (document.id !== ctx.id) {
    const detail = `The id '${document.id}' in the body does not match the id '${ctx.id}' in the URL.`;
    throw new ApiError(409, 'conflict', 'Conflict.', detail, { source: { pointer: '/data/id' } });
  }
  const changes = parseAttributes(document.attributes);
  return { status: 200, body: singleDocument(ctx.store.update(ctx.id, changes), ctx, fields) };
}

function importProfile(ctx: ApiContext): Reply {
  const fields = parseSparseFields(ctx.query);
  const document = readProfileDocument(ctx.body);
  const changes = parseAttributes(document.attributes);
  const existing = findImportTarget(ctx.store, document.id, changes);
  if (existing) {
    return { status: 200, body: singleDocument(ctx.store.update(existing.id, changes), ctx, fields) };
  }
  requireIdentifier(changes);
  return { status: 201, body: singleDocument(ctx.store.create(changes), ctx, fields) };
}

function createProfile(ctx: ApiContext): Reply {
  const fields = parseSparseFields(ctx.query);
  const document = readProfileDocument(ctx.body);
  if (document.id !== undefined)
    throw invalidPointer('/data/id', "'id' cannot be set when creating a profile.");
  const changes = parseAttributes(document.attributes);
  requireIdentifier(changes);
  return { status: 201, body: singleDocument(ctx.store.create(changes), ctx, fields) };
}

/**
 * Queues the merge of one source profile into the destination (`data.id`) and answers at once, as
 * Klaviyo does: the OpenAPI document's answer is 201 with `{data:{type:'profile', id, links}}`,
 * the id being the destination's. Both profiles must exist now (404 otherwise); the merge itself
 * runs later (see MergeQueue), with the rules of ProfileStore.merge.
 */
function mergeProfiles(ctx: ApiContext): Reply {
  // The spec's only sparse field for this operation is `id`.
  const fields = ctx.query.get('fields[profile]');
  if (fields?.split(',').some((field) => field.trim() !== 'id')) {
    throw invalidParameter('fields[profile]', "Only 'id' is a valid field here.");
  }
  const { destinationId, sourceId } = readMergeDocument(ctx.body);
  for (const id of [destinationId, sourceId]) if (!ctx.store.get(id)) throw profileNotFound(id);
  ctx.merges.enqueue({ destinationId, sourceId, requestedAt: ctx.now });
  const self = profileUrl(ctx.baseUrl, destinationId);
  return {
    status: 201,
    body: { data: { type: 'profile', id: destinationId, links: { self } }, links: { self } },
  };
}

const SOURCES_POINTER = '/data/relationships/profiles/data';

function readMergeDocument(body: ParsedBody): { destinationId: string; sourceId: string } {
  if (!body.ok)
    throw new ApiError(400, 'parse_error', 'Malformed request.', 'The request body is not valid JSON.');
  const document = body.value;
  if (!isPlainObject(document) || !isPlainObject(document.data)) {
    throw invalidPointer('/data', "The body must be a JSON:API document with a 'data' object.");
  }
  const { type, id, relationships } = document.data;
  if (type !== 'profile-merge') throw invalidPointer('/data/type', "'type' must be 'profile-merge'.");
  if (typeof id !== 'string' || id === '')
    throw invalidPointer('/data/id', "'id' (the destination profile) must be a non-empty string.");
  if (!isPlainObject(relationships))
    throw invalidPointer('/data/relationships', "'relationships' must be an object.");
  const { profiles } = relationships;
  if (!isPlainObject(profiles))
    throw invalidPointer('/data/relationships/profiles', "'profiles' must be an object.");
  const sources = profiles.data;
  if (!Array.isArray(sources)) throw invalidPointer(SOURCES_POINTER, "'data' must be an array.");
  if (sources.length !== 1) {
    throw invalidPointer(SOURCES_POINTER, `Exactly one source profile is required, got ${sources.length}.`);
  }
  const [source] = sources as unknown[];
  if (!isPlainObject(source) || source.type !== 'profile')
    throw invalidPointer(`${SOURCES_POINTER}/0/type`, "'type' must be 'profile'.");
  if (typeof source.id !== 'string' || source.id === '')
    throw invalidPointer(`${SOURCES_POINTER}/0/id`, "'id' (the source profile) must be a non-empty string.");
  if (source.id === id)
    throw invalidPointer(`${SOURCES_POINTER}/0/id`, 'A profile cannot be merged into itself.');
  return { destinationId: id, sourceId: source.id };
}

/**
 * The profile an import updates: the one with `id` when given (404 if unknown), else the first
 * holder of an identifier, trying email, phone_number, external_id in that order (Klaviyo's
 * precedence is unconfirmed). If another profile holds one of the other identifiers, the update
 * answers 409 duplicate_profile naming that other profile.
 */
function findImportTarget(
  store: ProfileStore,
  id: string | undefined,
  changes: ProfileChanges,
): Profile | undefined {
  if (id === undefined) return store.holderOf(changes);
  return store.get(id) ?? throwError(profileNotFound(id));
}

function readProfileDocument(body: ParsedBody): { id: string | undefined; attributes: unknown } {
  if (!body.ok)
    throw new ApiError(400, 'parse_error', 'Malformed request.', 'The request body is not valid JSON.');
  const document = body.value;
  if (!isPlainObject(document) || !isPlainObject(document.data)) {
    throw invalidPointer('/data', "The body must be a JSON:API document with a 'data' object.");
  }
  const { type, id, attributes, meta } = document.data;
  if (type !== 'profile') throw invalidPointer('/data/type', "'type' must be 'profile'.");
  if (id !== undefined && id !== null && typeof id !== 'string')
    throw invalidPointer('/data/id', "'id' must be a string.");
  // Silently ignoring patch operations would hide client bugs, so they are refused.
  if (meta !== undefined && meta !== null) {
    throw invalidPointer(
      '/data/meta',
      "'meta' (patch_properties, patch_identifiers) is not supported by the sandbox.",
    );
  }
  return { id: typeof id === 'string' ? id : undefined, attributes };
}

function singleDocument(profile: Profile, ctx: ApiContext, fields: ReadonlySet<string> | undefined) {
  return {
    data: profileResource(profile, ctx.baseUrl, fields),
    links: { self: profileUrl(ctx.baseUrl, profile.id) },
  };
}

const profileNotFound = (id: string) => notFound(`A profile with id '${id}' does not exist.`);

function throwError(error: ApiError): never {
  throw error;
}
