import type { BulkImportError, BulkImportJob, BulkImportProfile, KlaviyoBulkImports } from '../ports.js';
import type { KlaviyoSend } from './transport.js';

/**
 * Klaviyo's bulk profile import jobs (`POST /api/profile-bulk-import-jobs`): up to 10,000 profiles
 * or 5 MB a job, imported asynchronously; the job's status and counts are read back, and each
 * profile it could not import is an import error naming it by `source.pointer`. The limits are
 * 10/s and 150/min per endpoint (lib/klaviyo/limits.ts). A job never clears a field (null is
 * ignored), so it only suits writes whose outcome is known in advance.
 */
export const BULK_IMPORT_PATH = '/api/profile-bulk-import-jobs';
export const MAX_BULK_IMPORT_PROFILES = 10_000;
export const MAX_BULK_IMPORT_BYTES = 5 * 1024 * 1024;
/** The most import errors a page holds. */
const ERRORS_PAGE_SIZE = 100;

/** The rate-limit keys of the operations used here: each has Klaviyo's bulk limits of its own. */
export const BULK_IMPORT_ENDPOINTS = [
  `POST ${BULK_IMPORT_PATH}`,
  `GET ${BULK_IMPORT_PATH}/{id}`,
  `GET ${BULK_IMPORT_PATH}/{id}/import-errors`,
];

/** The request body of a job; its bytes count against the 5 MB limit. */
export const bulkImportBody = (profiles: BulkImportProfile[]) => ({
  data: {
    type: 'profile-bulk-import-job',
    attributes: {
      profiles: {
        data: profiles.map(({ id, attributes }) => ({ type: 'profile', ...(id ? { id } : {}), attributes })),
      },
    },
  },
});

/** Index of the job's profile a pointer such as `/data/attributes/profiles/data/3/attributes/email` names. */
export function profileIndexOf(pointer: string | undefined): number | undefined {
  const match = pointer?.match(/^\/data\/attributes\/profiles\/data\/(\d+)(?:\/|$)/);
  return match ? Number(match[1]) : undefined;
}

interface JobResource {
  id: string;
  attributes: {
    status: BulkImportJob['status'];
    total_count: number;
    completed_count?: number | null;
    failed_count?: number | null;
  };
}

const jobOf = ({ id, attributes }: JobResource): BulkImportJob => ({
  id,
  status: attributes.status,
  total: attributes.total_count,
  completed: attributes.completed_count ?? 0,
  failed: attributes.failed_count ?? 0,
});

interface ImportErrorResource {
  attributes: {
    code: string;
    detail: string;
    source?: { pointer?: string | null };
    original_payload?: unknown;
  };
}

/** The bulk import operations, sent through the client's request machinery (pacing, retries, errors). */
export function bulkImportsOf(send: KlaviyoSend): KlaviyoBulkImports {
  const jobPath = (jobId: string) => `${BULK_IMPORT_PATH}/${encodeURIComponent(jobId)}`;
  return {
    async startBulkImport(profiles) {
      if (profiles.length === 0 || profiles.length > MAX_BULK_IMPORT_PROFILES) {
        throw new RangeError(`a job holds 1 to ${MAX_BULK_IMPORT_PROFILES} profiles, got ${profiles.length}`);
      }
      const { json } = await send('POST', BULK_IMPORT_PATH, bulkImportBody(profiles));
      return jobOf((json as { data: JobResource }).data);
    },

    async getBulkImport(jobId) {
      const { json } = await send('GET', jobPath(jobId));
      return jobOf((json as { data: JobResource }).data);
    },

    async bulkImportErrors(jobId, cursor) {
      const query = new URLSearchParams({ 'page[size]': String(ERRORS_PAGE_SIZE) });
      if (cursor) query.set('page[cursor]', cursor);
      const { json } = await send('GET', `${jobPath(jobId)}/import-errors?${query}`);
      const page = json as { data?: ImportErrorResource[]; links?: { next?: string | null } };
      const errors = (page.data ?? []).map(
        ({ attributes }): BulkImportError => ({
          code: attributes.code,
          detail: attributes.detail,
          ...(attributes.source?.pointer ? { pointer: attributes.source.pointer } : {}),
          ...(attributes.original_payload === undefined
            ? {}
            : { originalPayload: attributes.original_payload }),
        }),
      );
      const next = page.links?.next ? new URL(page.links.next).searchParams.get('page[cursor]') : null;
      return { errors, ...(next ? { next } : {}) };
    },
  };
}
