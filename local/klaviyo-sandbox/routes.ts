import type { BulkImportQueue } from './bulk-imports.js';
import type { MergeQueue } from './merges.js';
import type { ParsedBody, Reply } from './reply.js';
import type { ProfileStore } from './store.js';

/** What every API route of the sandbox is given and is (profile-api.ts routes them). */
export interface ApiContext {
  /** The `{id}` path segment; empty on collection routes. */
  id: string;
  query: URLSearchParams;
  body: ParsedBody;
  /** The body's size in bytes. */
  bodyBytes: number;
  store: ProfileStore;
  merges: MergeQueue;
  bulkImports: BulkImportQueue;
  baseUrl: string;
  /** `clock()` when the request arrived. */
  now: number;
}

export interface ApiRoute {
  method: string;
  /** Rate-limit counter key: one per operation, like Klaviyo's per-endpoint limits. */
  key: string;
  queryParams: readonly string[];
  handle(ctx: ApiContext): Reply;
}
