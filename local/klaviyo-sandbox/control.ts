import { isPlainObject, parseAttributes } from './attributes.js';
import { ApiError, methodNotAllowed, notFound } from './errors.js';
import { errorReply, type ParsedBody, type Reply } from './reply.js';
import type { ProfileStore } from './store.js';
import {
  IDENTIFIERS,
  type Identifier,
  type KlaviyoSandbox,
  type Profile,
  type SandboxFault,
  type SeedProfileInput,
} from './types.js';

export const CONTROL_PREFIX = '/__sandbox';

/** Seeds from untyped input: the in-process API and the HTTP control route validate alike. */
export function seedProfile(store: ProfileStore, input: unknown): Profile {
  if (!isPlainObject(input))
    throw new ApiError(400, 'invalid', 'Invalid input.', 'A seed must be an object.');
  const { id, ...attributes } = input;
  if (id !== undefined && typeof id !== 'string')
    throw new ApiError(400, 'invalid', 'Invalid input.', 'id must be a string.');
  return store.create(parseAttributes(attributes), id);
}

interface ControlRequest {
  id: string;
  query: URLSearchParams;
  body: unknown;
}

type ControlHandler = (sandbox: KlaviyoSandbox, request: ControlRequest) => Reply;

const noContent = (): Reply => ({ status: 204 });

// Test-only control plane for other processes (e.g. the demo script). No auth, not rate limited, not recorded.
const CONTROL_ROUTES: { pattern: RegExp; handlers: Record<string, ControlHandler> }[] = [
  {
    pattern: /^\/__sandbox\/profiles$/,
    handlers: {
      GET: (sandbox, { query }) => ({ status: 200, body: { profiles: profilesMatching(sandbox, query) } }),
      // The casts are safe: seedProfile and injectFaults validate their input at run time.
      POST: (sandbox, { body }) => ({
        status: 201,
        body: { profile: sandbox.seedProfile(body as SeedProfileInput) },
      }),
    },
  },
  {
    pattern: /^\/__sandbox\/profiles\/([^/]+)$/,
    handlers: {
      GET: (sandbox, { id }) => ({
        status: 200,
        body: { profile: sandbox.getProfile(id) ?? throwNotFound(id) },
      }),
      DELETE: (sandbox, { id }) => (sandbox.deleteProfile(id) ? noContent() : throwNotFound(id)),
    },
  },
  {
    pattern: /^\/__sandbox\/faults$/,
    handlers: {
      POST: (sandbox, { body }) => {
        sandbox.injectFaults(body as SandboxFault | SandboxFault[]);
        return noContent();
      },
      DELETE: (sandbox) => {
        sandbox.clearFaults();
        return noContent();
      },
    },
  },
  {
    pattern: /^\/__sandbox\/requests$/,
    handlers: {
      GET: (sandbox) => ({ status: 200, body: { requests: sandbox.requests } }),
      DELETE: (sandbox) => {
        sandbox.clearRequests();
        return noContent();
      },
    },
  },
  {
    pattern: /^\/__sandbox\/merges$/,
    handlers: {
      GET: (sandbox) => ({ status: 200, body: { merges: sandbox.pendingMerges() } }),
    },
  },
  {
    pattern: /^\/__sandbox\/merges\/settle$/,
    handlers: {
      POST: (sandbox) => ({ status: 200, body: { settled: sandbox.settleMerges() } }),
    },
  },
  {
    pattern: /^\/__sandbox\/bulk-import-jobs$/,
    handlers: {
      GET: (sandbox) => ({ status: 200, body: { jobs: sandbox.bulkImportJobs() } }),
    },
  },
  {
    pattern: /^\/__sandbox\/bulk-import-jobs\/settle$/,
    handlers: {
      POST: (sandbox) => ({ status: 200, body: { settled: sandbox.settleBulkImports() } }),
    },
  },
  {
    pattern: /^\/__sandbox\/reset$/,
    handlers: {
      POST: (sandbox) => {
        sandbox.reset();
        return noContent();
      },
    },
  },
];

/** Answers a `/__sandbox/...` request; errors use the same JSON:API error document as the API. */
export function handleControl(sandbox: KlaviyoSandbox, method: string, target: URL, body: ParsedBody): Reply {
  try {
    const { handler, id } = matchControlRoute(method, target.pathname);
    if (!body.ok)
      throw new ApiError(400, 'parse_error', 'Malformed request.', 'The request body is not valid JSON.');
    return handler(sandbox, { id, query: target.searchParams, body: body.value });
  } catch (error) {
    if (error instanceof ApiError) return errorReply(error);
    throw error;
  }
}

function matchControlRoute(method: string, path: string): { handler: ControlHandler; id: string } {
  for (const { pattern, handlers } of CONTROL_ROUTES) {
    const match = pattern.exec(path);
    if (!match) continue;
    const handler = handlers[method];
    if (!handler) throw methodNotAllowed(method, Object.keys(handlers));
    return { handler, id: decodeURIComponent(match[1] ?? '') };
  }
  throw notFound(`No sandbox control route matches '${path}'.`);
}

/** `GET /__sandbox/profiles?email=…&external_id=…` narrows to profiles matching every identifier given. */
function profilesMatching(sandbox: KlaviyoSandbox, query: URLSearchParams): Profile[] {
  const criteria = [...query.entries()];
  for (const [name] of criteria) {
    if (!(IDENTIFIERS as readonly string[]).includes(name)) {
      throw new ApiError(400, 'invalid', 'Invalid input.', `Filter by ${IDENTIFIERS.join(', ')} only.`, {
        source: { parameter: name },
      });
    }
  }
  return sandbox
    .listProfiles()
    .filter((profile) => criteria.every(([name, value]) => profile[name as Identifier] === value));
}

function throwNotFound(id: string): never {
  throw notFound(`A profile with id '${id}' does not exist.`);
}
