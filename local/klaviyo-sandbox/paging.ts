import { invalidParameter } from './errors.js';

const DEFAULT_PAGE_SIZE = 20;

/** What paging needs of a request: its query (page[size], page[cursor]) and the sandbox's base URL. */
interface PagedRequest {
  query: URLSearchParams;
  baseUrl: string;
}

/**
 * One page of `all` as `page[size]` (1–100, default 20) and `page[cursor]` ask, with JSON:API
 * links to this page and the next and previous ones (null where there is none) under `path`.
 */
export function pageOf<T>(request: PagedRequest, path: string, all: readonly T[]) {
  const size = pageSize(request.query);
  const offset = pageOffset(request.query);
  const link = (at: number) => pageLink(request, path, at);
  return {
    items: all.slice(offset, offset + size),
    links: {
      self: link(offset),
      next: offset + size < all.length ? link(offset + size) : null,
      prev: offset > 0 ? link(Math.max(0, offset - size)) : null,
    },
  };
}

function pageSize(query: URLSearchParams): number {
  const raw = query.get('page[size]');
  if (raw === null) return DEFAULT_PAGE_SIZE;
  const size = /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!(size >= 1 && size <= 100))
    throw invalidParameter('page[size]', 'page[size] must be an integer from 1 to 100.');
  return size;
}

// Cursors are opaque to clients; here they encode the offset of the page.
function pageOffset(query: URLSearchParams): number {
  const raw = query.get('page[cursor]');
  if (raw === null) return 0;
  const decoded = Buffer.from(raw, 'base64url').toString();
  if (!/^\d+$/.test(decoded)) throw invalidParameter('page[cursor]', 'Invalid page cursor.');
  return Number(decoded);
}

function pageLink({ query, baseUrl }: PagedRequest, path: string, offset: number): string {
  const linked = new URLSearchParams(query);
  linked.delete('page[cursor]');
  if (offset > 0) linked.set('page[cursor]', Buffer.from(String(offset)).toString('base64url'));
  const search = linked.toString();
  return `${baseUrl}${path}${search ? `?${search}` : ''}`;
}
