import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import formats from 'ajv-formats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KLAVIYO_REVISION } from '../../lib/config.js';
import { createKlaviyoClient } from '../../lib/klaviyo/client.js';
import {
  type KlaviyoSandbox,
  type RecordedRequest,
  SANDBOX_API_KEY,
  startKlaviyoSandbox,
} from '../../local/klaviyo-sandbox.js';

/**
 * Our Klaviyo client and sandbox against Klaviyo's own OpenAPI description (an extract of the
 * profile endpoints, test/fixtures/klaviyo/openapi-profiles.json; test/fixtures/SOURCES.md says
 * from where and how it was trimmed).
 * The real client does each operation against the sandbox; every request it sent is validated
 * against the spec's parameters and request-body schema, and the sandbox's GET answers against
 * the spec's response schema.
 */
const SPEC_FILE = new URL('../fixtures/klaviyo/openapi-profiles.json', import.meta.url);
const MEDIA_TYPE = 'application/vnd.api+json';

type Schema = Record<string, unknown>;
interface Parameter {
  name: string;
  in: 'query' | 'header' | 'path';
  required?: boolean;
  schema: Schema;
}
interface Operation {
  operationId: string;
  parameters?: Parameter[];
  requestBody?: { content: Record<string, { schema: Schema }> };
  responses: Record<string, { content?: Record<string, { schema: Schema }> }>;
}
interface OpenApi {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Schema> };
}

const isRecord = (value: unknown): value is Schema =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * An OpenAPI 3.0 schema as JSON Schema for ajv: `nullable` beside a `$ref` or `oneOf` (no `type`,
 * which ajv's own `nullable` needs) becomes `anyOf` with null; examples go. With `closed`, an
 * object that declares its properties admits no others, so what we send must be declared (the spec
 * leaves objects open, where a misspelt attribute would pass unseen).
 */
function toJsonSchema(schema: unknown, closed: boolean): unknown {
  if (Array.isArray(schema)) return schema.map((item) => toJsonSchema(item, closed));
  if (!isRecord(schema)) return schema;
  const converted: Schema = {};
  for (const [key, value] of Object.entries(schema)) {
    if (key === 'example') continue;
    converted[key] =
      key === 'properties' && isRecord(value)
        ? Object.fromEntries(Object.entries(value).map(([name, of]) => [name, toJsonSchema(of, closed)]))
        : toJsonSchema(value, closed);
  }
  if (closed && isRecord(converted.properties) && converted.additionalProperties === undefined)
    converted.additionalProperties = false;
  if (converted.nullable === true && converted.type === undefined) {
    const { nullable: _, ...rest } = converted;
    return { anyOf: [rest, { type: 'null' }] };
  }
  return converted;
}

/** Validators over the spec's components: `closed` for what we send, open for what we receive. */
function validatorOf(spec: OpenApi, closed: boolean) {
  const ajv = new Ajv({ strict: false, allErrors: true });
  formats.default(ajv);
  ajv.addSchema({ $id: 'klaviyo', components: { schemas: toJsonSchema(spec.components.schemas, closed) } });
  /** What is wrong with `value` under `schema` (a `$ref` into the components, or inline), or nothing. */
  return (schema: Schema, value: unknown): string[] => {
    const converted = toJsonSchema(schema, closed) as Schema;
    const ref = converted.$ref;
    const validate = ajv.compile(typeof ref === 'string' ? { $ref: `klaviyo${ref}` } : converted);
    return validate(value) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}`);
  };
}

function operationOf(spec: OpenApi, method: string, path: string): Operation {
  for (const [template, item] of Object.entries(spec.paths)) {
    const operation = item[method.toLowerCase()];
    if (operation && new RegExp(`^${template.replace(/\{[^}]+\}/g, '[^/]+')}$`).test(path)) return operation;
  }
  throw new Error(`the spec has no operation ${method} ${path}`);
}

/** What the spec refuses in one request we sent: its parameters, its content type, its body. */
function requestProblems(spec: OpenApi, check: ReturnType<typeof validatorOf>, request: RecordedRequest) {
  const operation = operationOf(spec, request.method, request.path);
  const parameters = operation.parameters ?? [];
  const problems: string[] = [];
  for (const [name, value] of Object.entries(request.query)) {
    const parameter = parameters.find((p) => p.in === 'query' && p.name === name);
    if (!parameter) {
      problems.push(`query ${name} is not a parameter`);
      continue;
    }
    // Arrays are form style, explode false: comma-separated.
    const type = parameter.schema.type;
    const typed = type === 'array' ? value.split(',') : type === 'integer' ? Number(value) : value;
    problems.push(...check(parameter.schema, typed).map((problem) => `query ${name}: ${problem}`));
  }
  for (const header of parameters.filter((p) => p.in === 'header' && p.required))
    if (request.headers[header.name.toLowerCase()] === undefined)
      problems.push(`header ${header.name} missing`);
  if (operation.requestBody) {
    const contentType = request.headers['content-type'] ?? '(none)';
    const content = operation.requestBody.content[contentType];
    if (!content) problems.push(`content type ${contentType} is not the spec's`);
    else problems.push(...check(content.schema, request.body).map((problem) => `body ${problem}`));
  }
  return { operationId: operation.operationId, problems };
}

/**
 * The one difference allowed: the sandbox answers `links.next`/`links.prev` null where there is no
 * such page (its own tests pin that, as Klaviyo's answers are reported to do), while the spec
 * declares them optional strings and never null. Our client never reads them.
 */
function withoutNullPageLinks<T extends { links?: Record<string, unknown> }>(body: T): T {
  if (!body.links) return body;
  const links = Object.fromEntries(
    Object.entries(body.links).filter(
      ([name, value]) => !(['next', 'prev'].includes(name) && value === null),
    ),
  );
  return { ...body, links };
}

/** An extract of Klaviyo's OpenAPI document (test/fixtures/klaviyo/, sources in SOURCES.md). */
const specOf = (file: URL) => JSON.parse(readFileSync(file, 'utf8')) as OpenApi;

/** Our Klaviyo client, pointed at the sandbox with its key. */
const clientOf = (sandbox: KlaviyoSandbox) =>
  createKlaviyoClient({
    baseUrl: sandbox.url,
    apiKey: SANDBOX_API_KEY,
    revision: KLAVIYO_REVISION,
    timeoutMs: 5_000,
  });

describe('the Klaviyo client against the OpenAPI spec (test/fixtures/klaviyo)', () => {
  let spec: OpenApi;
  let sandbox: KlaviyoSandbox;
  let forRequests: ReturnType<typeof validatorOf>;
  let forResponses: ReturnType<typeof validatorOf>;

  beforeAll(async () => {
    spec = specOf(SPEC_FILE);
    forRequests = validatorOf(spec, true);
    forResponses = validatorOf(spec, false);
    sandbox = await startKlaviyoSandbox();
    const client = clientOf(sandbox);
    const { profile } = await client.importProfile({
      external_id: 'spec-1',
      email: 'spec.one@example.com',
      phone_number: '+14155550101',
    });
    await client.updateProfile(profile.id, { email: 'spec.two@example.com', phone_number: null });
    await client.updateProfile(profile.id, { external_id: 'spec-1', phone_number: '+14155550102' });
    const duplicate = sandbox.seedProfile({ email: 'spec.duplicate@example.com' });
    await client.mergeProfiles(profile.id, duplicate.id);
    await client.findProfiles('email', 'spec.two@example.com');
    await client.findProfiles('external_id', 'spec-1');
    await client.getProfile(profile.id);
  });
  afterAll(() => sandbox?.stop());

  it('sends only requests the spec allows: parameters, content type and body of each operation', () => {
    const checked = sandbox.requests.map((request) => requestProblems(spec, forRequests, request));

    expect(new Set(checked.map((c) => c.operationId))).toEqual(
      new Set([
        'create_or_update_profile',
        'update_profile',
        'merge_profiles',
        'get_profiles',
        'get_profile',
      ]),
    );
    expect(checked.filter((c) => c.problems.length > 0)).toEqual([]);
  });

  it('would notice a body or parameters the spec does not allow', () => {
    const patch = operationOf(spec, 'PATCH', '/api/profiles/01P');
    const schema = patch.requestBody?.content[MEDIA_TYPE]?.schema ?? {};
    const wrong = (data: unknown) => forRequests(schema, { data });

    expect(wrong({ type: 'profile', id: '01P', attributes: { email: null } })).toEqual([]);
    expect(wrong({ type: 'profile', id: '01P', attributes: { phoneNumber: '+14155550101' } })).toEqual([
      '/data/attributes must NOT have additional properties',
    ]);
    expect(wrong({ type: 'profiles', id: '01P', attributes: {} })).toEqual([
      '/data/type must be equal to one of the allowed values',
    ]);
    expect(wrong({ type: 'profile', attributes: { email: 7 } })).toEqual([
      "/data must have required property 'id'",
      '/data/attributes/email must be string',
    ]);

    const get = sandbox.requests.find((request) => request.method === 'GET' && request.query.filter);
    if (!get) throw new Error('the client sent no GET /api/profiles');
    const query = { ...get.query, 'fields[profile]': 'email,phoneNumber', 'page[size]': '500', page: '2' };
    expect(requestProblems(spec, forRequests, { ...get, query, headers: {} }).problems).toEqual([
      'query fields[profile]: /1 must be equal to one of the allowed values',
      'query page[size]: / must be <= 100',
      'query page is not a parameter',
      'header revision missing',
    ]);
  });

  it("answers GET /api/profiles and GET /api/profiles/{id} as the spec's response schemas say", async () => {
    const id = sandbox.findProfile({ external_id: 'spec-1' })?.id;
    const gets = [
      ...sandbox.requests.filter((request) => request.method === 'GET').map((request) => request.url),
      // Without a sparse fieldset: every attribute the sandbox keeps.
      '/api/profiles',
      `/api/profiles/${id}`,
    ];
    const problems: string[] = [];
    for (const url of gets) {
      const response = await fetch(`${sandbox.url}${url}`, {
        headers: { authorization: `Klaviyo-API-Key ${SANDBOX_API_KEY}`, revision: KLAVIYO_REVISION },
      });
      expect(response.status, url).toBe(200);
      const schema = operationOf(spec, 'GET', url.split('?')[0] ?? url).responses['200']?.content?.[
        MEDIA_TYPE
      ]?.schema;
      const body = (await response.json()) as { data: unknown; links?: Record<string, unknown> };
      if (Array.isArray(body.data)) expect(body.data.length, url).toBeGreaterThan(0);
      const answer = withoutNullPageLinks(body);
      problems.push(...forResponses(schema ?? {}, answer).map((problem) => `${url}: ${problem}`));
    }
    expect(gets.length).toBeGreaterThanOrEqual(5);
    expect(problems).toEqual([]);
  });
});

/** Request Profile Deletion, against its extract of the same spec. */
const DATA_PRIVACY_SPEC_FILE = new URL('../fixtures/klaviyo/openapi-data-privacy.json', import.meta.url);

describe('the profile deletion request against the OpenAPI spec (test/fixtures/klaviyo/openapi-data-privacy.json)', () => {
  let spec: OpenApi;
  let sandbox: KlaviyoSandbox;

  beforeAll(async () => {
    spec = specOf(DATA_PRIVACY_SPEC_FILE);
    sandbox = await startKlaviyoSandbox();
    const client = clientOf(sandbox);
    await client.requestProfileDeletion(sandbox.seedProfile({ email: 'spec.delete@example.com' }).id);
  });
  afterAll(() => sandbox?.stop());

  it('sends only what the spec allows, and is answered 202 as the spec says', () => {
    const forRequests = validatorOf(spec, true);
    const checked = sandbox.requests.map((request) => requestProblems(spec, forRequests, request));
    expect(checked).toEqual([{ operationId: 'request_profile_deletion', problems: [] }]);
    expect(Object.keys(operationOf(spec, 'POST', '/api/data-privacy-deletion-jobs').responses)).toContain(
      String(sandbox.requests[0]?.status),
    );
  });

  it('would notice a deletion without the attributes the spec requires, or with another type', () => {
    const schema =
      operationOf(spec, 'POST', '/api/data-privacy-deletion-jobs').requestBody?.content[MEDIA_TYPE]?.schema ??
      {};
    const check = validatorOf(spec, true);
    const profile = (data: unknown) => ({
      data: { type: 'data-privacy-deletion-job', attributes: { profile: { data } } },
    });
    expect(check(schema, profile({ type: 'profile', id: '01P', attributes: {} }))).toEqual([]);
    expect(check(schema, profile({ type: 'profile', id: '01P' }))).toEqual([
      "/data/attributes/profile/data must have required property 'attributes'",
    ]);
    expect(check(schema, profile({ type: 'profile', attributes: { external_id: '42' } }))).toEqual([
      '/data/attributes/profile/data/attributes must NOT have additional properties',
    ]);
  });
});

/** The bulk profile import job endpoints, against their extract of the same spec. */
const BULK_SPEC_FILE = new URL('../fixtures/klaviyo/openapi-bulk-import.json', import.meta.url);

describe('the bulk import client against the OpenAPI spec (test/fixtures/klaviyo/openapi-bulk-import.json)', () => {
  let spec: OpenApi;
  let sandbox: KlaviyoSandbox;

  beforeAll(async () => {
    spec = specOf(BULK_SPEC_FILE);
    sandbox = await startKlaviyoSandbox({ bulkImportDelayMs: Number.POSITIVE_INFINITY });
    const client = clientOf(sandbox);
    const unbound = sandbox.seedProfile({ email: 'spec.bulk@example.com' });
    const job = await client.startBulkImport([
      { id: unbound.id, attributes: { external_id: 'spec-bulk-1' } },
      {
        attributes: {
          external_id: 'spec-bulk-2',
          email: 'spec.bulk.two@example.com',
          phone_number: '+14155550111',
        },
      },
      { attributes: { external_id: 'spec-bulk-3', email: 'not-an-email' } },
    ]);
    sandbox.settleBulkImports();
    await client.getBulkImport(job.id);
    await client.bulkImportErrors(job.id);
  });
  afterAll(() => sandbox?.stop());

  it('sends only requests the spec allows', () => {
    const forRequests = validatorOf(spec, true);
    const checked = sandbox.requests.map((request) => requestProblems(spec, forRequests, request));

    expect(checked.map((c) => c.operationId)).toEqual([
      'bulk_import_profiles',
      'get_bulk_import_profiles_job',
      'get_errors_for_bulk_import_profiles_job',
    ]);
    expect(checked.filter((c) => c.problems.length > 0)).toEqual([]);
  });

  it("answers as the spec's response schemas say", async () => {
    const forResponses = validatorOf(spec, false);
    const [job] = sandbox.bulkImportJobs();
    const problems: string[] = [];
    for (const path of [
      `/api/profile-bulk-import-jobs/${job?.id}`,
      `/api/profile-bulk-import-jobs/${job?.id}/import-errors`,
      `/api/profile-bulk-import-jobs/${job?.id}/relationships/profiles`,
    ]) {
      const response = await fetch(`${sandbox.url}${path}`, {
        headers: { authorization: `Klaviyo-API-Key ${SANDBOX_API_KEY}`, revision: KLAVIYO_REVISION },
      });
      expect(response.status, path).toBe(200);
      const schema = operationOf(spec, 'GET', path).responses['200']?.content?.[MEDIA_TYPE]?.schema;
      const answer = withoutNullPageLinks((await response.json()) as { links?: Record<string, unknown> });
      problems.push(...forResponses(schema ?? {}, answer).map((problem) => `${path}: ${problem}`));
    }
    const posted = sandbox.requests[0];
    expect(posted?.status).toBe(202);
    expect(problems).toEqual([]);
  });
});
