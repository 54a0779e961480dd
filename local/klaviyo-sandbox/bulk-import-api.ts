import {
  BULK_IMPORT_PATH,
  MAX_BULK_IMPORT_BYTES,
  MAX_BULK_IMPORT_PROFILES,
} from '../../lib/klaviyo/bulk-import.js';
import { isPlainObject } from './attributes.js';
import { ApiError, invalidPointer, notFound } from './errors.js';
import { pageOf } from './paging.js';
import type { Reply } from './reply.js';
import type { ApiContext, ApiRoute } from './routes.js';
import { formatTimestamp } from './store.js';
import type { BulkImportJobState } from './types.js';

/**
 * Klaviyo's bulk profile import job endpoints (the spec's "Bulk Import Profiles"): start a job,
 * read it, page its import errors and the profiles it imported. The jobs themselves are
 * BulkImportQueue's. Limits, as Klaviyo documents them: up to 10,000 profiles and 5 MB a job
 * (the sandbox answers 400 and 413 beyond them), each endpoint 10/s and 150/min.
 */
const JOBS_PATH = BULK_IMPORT_PATH;
const PAGING = ['page[size]', 'page[cursor]'];

/** Rate-limit keys: one per operation, each with the bulk import limits. */
export const BULK_IMPORT_ROUTE_KEYS = {
  create: `POST ${JOBS_PATH}`,
  get: `GET ${JOBS_PATH}/{id}`,
  errors: `GET ${JOBS_PATH}/{id}/import-errors`,
  profiles: `GET ${JOBS_PATH}/{id}/relationships/profiles`,
};

export const BULK_IMPORT_PATHS: { pattern: RegExp; routes: ApiRoute[] }[] = [
  {
    pattern: /^\/api\/profile-bulk-import-jobs$/,
    routes: [{ method: 'POST', key: BULK_IMPORT_ROUTE_KEYS.create, queryParams: [], handle: createJob }],
  },
  {
    pattern: /^\/api\/profile-bulk-import-jobs\/([^/]+)$/,
    routes: [{ method: 'GET', key: BULK_IMPORT_ROUTE_KEYS.get, queryParams: [], handle: getJob }],
  },
  {
    pattern: /^\/api\/profile-bulk-import-jobs\/([^/]+)\/import-errors$/,
    routes: [
      { method: 'GET', key: BULK_IMPORT_ROUTE_KEYS.errors, queryParams: PAGING, handle: importErrors },
    ],
  },
  {
    pattern: /^\/api\/profile-bulk-import-jobs\/([^/]+)\/relationships\/profiles$/,
    routes: [
      { method: 'GET', key: BULK_IMPORT_ROUTE_KEYS.profiles, queryParams: PAGING, handle: jobProfiles },
    ],
  },
];

const PROFILES_POINTER = '/data/attributes/profiles/data';

function createJob(ctx: ApiContext): Reply {
  if (ctx.bodyBytes > MAX_BULK_IMPORT_BYTES) {
    throw new ApiError(
      413,
      'payload_too_large',
      'Payload too large.',
      `A job's body must be at most ${MAX_BULK_IMPORT_BYTES} bytes.`,
    );
  }
  if (!ctx.body.ok)
    throw new ApiError(400, 'parse_error', 'Malformed request.', 'The request body is not valid JSON.');
  const document = ctx.body.value;
  if (!isPlainObject(document) || !isPlainObject(document.data))
    throw invalidPointer('/data', "The body must be a JSON:API document with a 'data' object.");
  const { type, attributes, relationships } = document.data;
  if (type !== 'profile-bulk-import-job')
    throw invalidPointer('/data/type', "'type' must be 'profile-bulk-import-job'.");
  // Adding the profiles to lists is not modelled: refused rather than silently ignored.
  if (relationships !== undefined)
    throw invalidPointer('/data/relationships', "'relationships' (lists) is not supported by the sandbox.");
  const profiles =
    isPlainObject(attributes) && isPlainObject(attributes.profiles) ? attributes.profiles.data : undefined;
  if (!Array.isArray(profiles)) throw invalidPointer(PROFILES_POINTER, "'profiles.data' must be an array.");
  if (profiles.length === 0 || profiles.length > MAX_BULK_IMPORT_PROFILES)
    throw invalidPointer(
      PROFILES_POINTER,
      `A job holds 1 to ${MAX_BULK_IMPORT_PROFILES} profiles, got ${profiles.length}.`,
    );
  const job = ctx.bulkImports.create(profiles, ctx.now);
  return { status: 202, body: jobDocument(job, ctx) };
}

function getJob(ctx: ApiContext): Reply {
  return { status: 200, body: jobDocument(jobOf(ctx), ctx) };
}

function importErrors(ctx: ApiContext): Reply {
  const job = jobOf(ctx);
  const { items, links } = pageOf(ctx, `${JOBS_PATH}/${job.id}/import-errors`, job.errors);
  const data = items.map(({ id, ...attributes }) => ({ type: 'import-error', id, attributes }));
  return { status: 200, body: { data, links } };
}

function jobProfiles(ctx: ApiContext): Reply {
  const job = jobOf(ctx);
  const { items, links } = pageOf(ctx, `${JOBS_PATH}/${job.id}/relationships/profiles`, job.profileIds);
  return { status: 200, body: { data: items.map((id) => ({ type: 'profile', id })), links } };
}

function jobOf(ctx: ApiContext): BulkImportJobState {
  const job = ctx.bulkImports.get(ctx.id);
  if (!job) throw notFound(`A bulk import job with id '${ctx.id}' does not exist.`);
  return job;
}

const timestampOf = (ms: number | undefined) => (ms === undefined ? null : formatTimestamp(ms));

/** The job resource, as `PostProfileImportJobResponse` and `GetProfileImportJobResponseCompoundDocument` shape it. */
function jobDocument(job: BulkImportJobState, ctx: ApiContext) {
  const self = `${ctx.baseUrl}${JOBS_PATH}/${job.id}`;
  return {
    data: {
      type: 'profile-bulk-import-job',
      id: job.id,
      attributes: {
        status: job.status,
        created_at: formatTimestamp(job.createdAt),
        total_count: job.total,
        completed_count: job.completed,
        failed_count: job.failed,
        completed_at: timestampOf(job.completedAt),
        expires_at: null,
        started_at: timestampOf(job.startedAt),
      },
      relationships: {
        lists: { data: [], links: { self: `${self}/relationships/lists`, related: `${self}/lists` } },
        profiles: { links: { self: `${self}/relationships/profiles`, related: `${self}/profiles` } },
        'import-errors': { links: { related: `${self}/import-errors` } },
      },
      links: { self },
    },
    links: { self },
  };
}
