import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  KLAVIYO_BULK_IMPORT_LIMITS,
  KLAVIYO_DELETION_LIMITS,
  KLAVIYO_MERGE_LIMITS,
  KLAVIYO_PROFILE_LIMITS,
  type RateLimit,
} from '../../lib/klaviyo/limits.js';
import { BULK_IMPORT_ROUTE_KEYS } from './bulk-import-api.js';
import { BulkImportQueue } from './bulk-imports.js';
import { CONTROL_PREFIX, handleControl, seedProfile } from './control.js';
import { DELETION_ROUTE_KEY } from './deletion-api.js';
import { ApiError, internalError, invalidParameter, notAuthenticated } from './errors.js';
import { FaultQueue, faultError, faultName } from './faults.js';
import { MergeQueue } from './merges.js';
import { MERGE_ROUTE_KEY, matchApiRoute, runApiRoute } from './profile-api.js';
import { RateLimiter } from './rate-limiter.js';
import { errorReply, type ParsedBody, parseJsonBody, type Reply } from './reply.js';
import { ProfileStore } from './store.js';
import type { KlaviyoSandbox, KlaviyoSandboxOptions, RecordedRequest } from './types.js';

export const SANDBOX_API_KEY = 'pk_sandbox_demo';
const asSandboxLimits = (limits: RateLimit) => ({
  burstPerSecond: limits.perSecond,
  steadyPerMinute: limits.perMinute,
});
const DEFAULT_RATE_LIMITS = asSandboxLimits(KLAVIYO_PROFILE_LIMITS);
const DEFAULT_MERGE_RATE_LIMITS = asSandboxLimits(KLAVIYO_MERGE_LIMITS);
const DEFAULT_BULK_IMPORT_RATE_LIMITS = asSandboxLimits(KLAVIYO_BULK_IMPORT_LIMITS);
const DELETION_RATE_LIMITS = asSandboxLimits(KLAVIYO_DELETION_LIMITS);
const DEFAULT_MERGE_DELAY_MS = 200;
const DEFAULT_BULK_IMPORT_DELAY_MS = 200;
/** Oldest revision whose paths have no trailing slash; older ones are retired anyway. */
const OLDEST_REVISION = '2024-10-15';
const JSON_API = 'application/vnd.api+json';
// Bounded so a long-running local stack (`npm start`) does not grow without limit.
const DEFAULT_MAX_RECORDED_REQUESTS = 10_000;

interface SandboxState {
  store: ProfileStore;
  merges: MergeQueue;
  bulkImports: BulkImportQueue;
  faults: FaultQueue;
  limiter: RateLimiter;
  requests: RecordedRequest[];
  maxRecordedRequests: number;
  clock: () => number;
  apiKeys: Set<string>;
  revisions: readonly string[] | undefined;
  baseUrl: string;
  /** Aborted by stop(), which cuts short injected delays. */
  shutdown: AbortSignal;
}

/** Starts a local stand-in for Klaviyo's profile endpoints. See ../klaviyo-sandbox.ts for the overview. */
export async function startKlaviyoSandbox(options: KlaviyoSandboxOptions = {}): Promise<KlaviyoSandbox> {
  const clock = options.clock ?? Date.now;
  const shutdown = new AbortController();
  const store = new ProfileStore(clock);
  // Built before listening so that a bad mergeDelayMs throws without leaving a server behind.
  const merges = new MergeQueue(store, options.mergeDelayMs ?? DEFAULT_MERGE_DELAY_MS);
  const bulkImports = new BulkImportQueue(
    store,
    options.bulkImportDelayMs ?? DEFAULT_BULK_IMPORT_DELAY_MS,
    clock,
  );
  const bulkLimits = options.bulkImportRateLimits ?? DEFAULT_BULK_IMPORT_RATE_LIMITS;
  const state: SandboxState = {
    store,
    merges,
    bulkImports,
    faults: new FaultQueue(clock),
    limiter: new RateLimiter(
      options.rateLimits ?? DEFAULT_RATE_LIMITS,
      clock,
      {
        [MERGE_ROUTE_KEY]: options.mergeRateLimits ?? DEFAULT_MERGE_RATE_LIMITS,
        ...Object.fromEntries(Object.values(BULK_IMPORT_ROUTE_KEYS).map((key) => [key, bulkLimits])),
        [DELETION_ROUTE_KEY]: DELETION_RATE_LIMITS,
      },
      options.rateLimitPhaseMs,
    ),
    requests: [],
    maxRecordedRequests: options.maxRecordedRequests ?? DEFAULT_MAX_RECORDED_REQUESTS,
    clock,
    apiKeys: new Set(options.apiKeys ?? [SANDBOX_API_KEY]),
    revisions: options.revisions,
    baseUrl: '',
    shutdown: shutdown.signal,
  };

  const server = createServer((req, res) => {
    void handleRequest(state, sandbox, req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  state.baseUrl = baseUrlOf(server.address() as AddressInfo);

  const sandbox: KlaviyoSandbox = {
    url: state.baseUrl,
    requests: state.requests,
    async stop() {
      if (!server.listening) return;
      shutdown.abort();
      state.merges.close();
      state.bulkImports.close();
      const closed = new Promise<void>((resolve, reject) =>
        server.close((error) => (error ? reject(error) : resolve())),
      );
      // close() only drops idle connections; also drop one stalled mid-request so stop() never waits on a client.
      server.closeAllConnections();
      await closed;
    },
    seedProfile: (attrs) => seedProfile(state.store, attrs),
    getProfile: (id) => state.store.get(id),
    listProfiles: () => state.store.list(),
    findProfile: (query) => state.store.find(query),
    deleteProfile: (id) => state.store.delete(id),
    injectFaults: (faults) => state.faults.add([faults].flat()),
    clearFaults: () => state.faults.clear(),
    setApiKeys: (keys) => {
      state.apiKeys.clear();
      for (const key of keys) state.apiKeys.add(key);
    },
    clearRequests: () => {
      state.requests.length = 0;
    },
    pendingMerges: () => state.merges.pending(),
    settleMerges: () => state.merges.settle(),
    bulkImportJobs: () => state.bulkImports.list(),
    settleBulkImports: () => state.bulkImports.settle(),
    reset: () => {
      state.merges.clear();
      state.bulkImports.clear();
      state.store.clear();
      state.faults.clear();
      state.limiter.reset();
      state.requests.length = 0;
    },
  };
  return sandbox;
}

function baseUrlOf({ address, port }: AddressInfo): string {
  return `http://${address.includes(':') ? `[${address}]` : address}:${port}`;
}

async function handleRequest(
  state: SandboxState,
  sandbox: KlaviyoSandbox,
  req: IncomingMessage,
  res: ServerResponse,
) {
  try {
    const raw = await readBody(req);
    const body = parseJsonBody(raw);
    const method = req.method ?? 'GET';
    const target = new URL(req.url ?? '/', 'http://sandbox.invalid');
    if (target.pathname === CONTROL_PREFIX || target.pathname.startsWith(`${CONTROL_PREFIX}/`)) {
      send(res, handleControl(sandbox, method, target, body), 'application/json');
      return;
    }
    const entry = recordRequest(state, req, target, body);
    const reply = await answerApi(state, entry, target, { body, bodyBytes: Buffer.byteLength(raw) });
    entry.status = reply.status;
    send(res, reply, JSON_API);
  } catch (error) {
    // An injected reset, stop() cutting an injected delay short, or a failure outside the API
    // pipeline: never crash the host.
    if (error instanceof ConnectionReset || state.shutdown.aborted || res.headersSent) res.destroy();
    else send(res, errorReply(internalError(error)), JSON_API);
  }
}

/**
 * The API pipeline, in order: route (404/405), auth (401), revision (400), injected fault,
 * rate limit (429), then the endpoint. Injected faults therefore need valid credentials and do not
 * consume rate-limit quota. Responses that got past the rate limiter carry RateLimit-* headers.
 */
async function answerApi(
  state: SandboxState,
  request: RecordedRequest,
  target: URL,
  { body, bodyBytes }: { body: ParsedBody; bodyBytes: number },
): Promise<Reply> {
  let rateLimitHeaders: Record<string, string> = {};
  try {
    const { route, id } = matchApiRoute(request.method, target.pathname);
    authenticate(state.apiKeys, request.headers.authorization);
    checkRevision(state, request.headers.revision);
    const fault = state.faults.take(request.method, target.pathname);
    if (fault) request.fault = faultName(fault);
    if (fault && !fault.afterApplying) {
      if (fault.delayMs) await sleep(fault.delayMs, undefined, { signal: state.shutdown });
      if ('reset' in fault) throw new ConnectionReset();
      if (fault.status !== undefined) throw faultError(fault);
    }
    rateLimitHeaders = state.limiter.take(route.key);
    const ctx = {
      id,
      query: target.searchParams,
      body,
      bodyBytes,
      store: state.store,
      merges: state.merges,
      bulkImports: state.bulkImports,
      baseUrl: state.baseUrl,
      now: request.receivedAt,
    };
    const reply = runApiRoute(route, ctx);
    // Applied; what is lost now is the answer (held back, or the connection dropped).
    if (fault?.afterApplying && fault.delayMs)
      await sleep(fault.delayMs, undefined, { signal: state.shutdown });
    if (fault?.afterApplying && 'reset' in fault) throw new ConnectionReset();
    return { ...reply, headers: { ...rateLimitHeaders, ...reply.headers } };
  } catch (error) {
    if (error instanceof ConnectionReset) throw error;
    if (error instanceof ApiError) return errorReply(error, rateLimitHeaders);
    if (state.shutdown.aborted) throw error;
    return errorReply(internalError(error), rateLimitHeaders);
  }
}

/** An injected fault that drops the connection without an answer. */
class ConnectionReset extends Error {}

const API_KEY_HEADER = /^Klaviyo-API-Key (\S+)$/;

/** Only private keys are accepted: public (site id) keys, Bearer tokens and unknown keys all get 401. */
function authenticate(apiKeys: ReadonlySet<string>, header: string | undefined): void {
  const key = header === undefined ? undefined : API_KEY_HEADER.exec(header)?.[1];
  if (key === undefined || !apiKeys.has(key)) throw notAuthenticated();
}

function checkRevision(state: SandboxState, revision: string | undefined): void {
  if (revision === undefined)
    throw invalidParameter('revision', "The 'revision' header is required (YYYY-MM-DD).");
  const accepted = state.revisions
    ? state.revisions.includes(revision)
    : isCurrentRevision(revision, state.clock());
  if (!accepted) {
    const expected = state.revisions
      ? `one of ${state.revisions.join(', ')}`
      : `a YYYY-MM-DD date from ${OLDEST_REVISION} up to today`;
    throw invalidParameter('revision', `Invalid revision '${revision}': expected ${expected}.`);
  }
}

function isCurrentRevision(revision: string, now: number): boolean {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(revision)) return false;
  const date = new Date(`${revision}T00:00:00Z`);
  // The round trip rejects impossible dates such as 2025-02-30.
  if (Number.isNaN(date.getTime()) || date.toISOString().slice(0, 10) !== revision) return false;
  return revision >= OLDEST_REVISION && revision <= new Date(now).toISOString().slice(0, 10);
}

function recordRequest(
  state: SandboxState,
  req: IncomingMessage,
  target: URL,
  body: ParsedBody,
): RecordedRequest {
  const entry: RecordedRequest = {
    method: req.method ?? 'GET',
    path: target.pathname,
    query: Object.fromEntries(target.searchParams),
    url: req.url ?? '/',
    headers: Object.fromEntries(
      Object.entries(req.headers).map(([name, value]) => [
        name,
        Array.isArray(value) ? value.join(', ') : (value ?? ''),
      ]),
    ),
    body: body.ok ? body.value : undefined,
    status: 0,
    receivedAt: state.clock(),
  };
  if (state.requests.length >= state.maxRecordedRequests) state.requests.shift();
  state.requests.push(entry);
  return entry;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function send(res: ServerResponse, reply: Reply, contentType: string): void {
  const body = reply.body === undefined ? undefined : JSON.stringify(reply.body);
  res.writeHead(reply.status, {
    ...(body !== undefined && { 'content-type': contentType }),
    ...reply.headers,
  });
  res.end(body);
}
