import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { erpReceiptSchema, erpRequestSchema, MAX_BODY_BYTES } from '../../lib/erp/contract.js';
import {
  erpOpenApiComponents,
  erpRequestJsonSchema,
  OPENAPI_FILE,
  SCHEMA_FILE,
} from '../../scripts/generate-contract-docs.js';

/**
 * The committed docs describe the contract the endpoint parses with. When one of these fails
 * after a change to lib/erp/contract.ts, run `npx tsx scripts/generate-contract-docs.ts`.
 */
type Json = Record<string, unknown>;
const readJson = (file: string) => JSON.parse(readFileSync(file, 'utf8')) as Json;

interface Operation {
  parameters: { name: string; in: string; required?: boolean }[];
  requestBody: {
    content: { 'application/json': { schema: Json; examples?: Record<string, { value: unknown }> } };
  };
  responses: Record<string, { content?: { 'application/json': { schema: Json; example?: unknown } } }>;
}

const openApi = readJson(OPENAPI_FILE) as {
  openapi: string;
  paths: Record<string, { post: Operation }>;
  components: { schemas: Record<string, Json> };
};
const erp = openApi.paths['/webhooks/erp/{tenant}']?.post as Operation;
const shopify = openApi.paths['/webhooks/shopify']?.post as Operation;

describe('docs/erp-change.schema.json', () => {
  it('is what the zod contract generates', () => {
    expect(readJson(SCHEMA_FILE)).toEqual(erpRequestJsonSchema());
  });
});

describe('docs/openapi.json', () => {
  it('is an OpenAPI 3.1 document of both webhook endpoints', () => {
    expect(openApi.openapi).toMatch(/^3\.1\.\d+$/);
    expect(Object.keys(openApi.paths).sort()).toEqual(['/webhooks/erp/{tenant}', '/webhooks/shopify']);
    expect(erp).toBeDefined();
    expect(shopify).toBeDefined();
  });

  it('holds the generated ERP schemas, and the ERP request body is the generated request schema', () => {
    expect(openApi.components.schemas).toEqual(erpOpenApiComponents());
    expect(erp.requestBody.content['application/json'].schema).toEqual({
      $ref: '#/components/schemas/ErpRequest',
    });
    expect(erp.responses['202']?.content?.['application/json'].schema).toEqual({
      $ref: '#/components/schemas/ErpReceipt',
    });
  });

  it('names the headers and answers of each endpoint', () => {
    const headers = (operation: Operation) =>
      operation.parameters.filter((p) => p.in === 'header' && p.required).map((p) => p.name.toLowerCase());
    expect(headers(erp)).toEqual(['webhook-id', 'webhook-timestamp', 'webhook-signature']);
    expect(erp.parameters).toContainEqual(
      expect.objectContaining({ name: 'tenant', in: 'path', required: true }),
    );
    expect(Object.keys(erp.responses)).toEqual(['200', '202', '400', '401', '413', '500', '503']);
    expect(headers(shopify)).toEqual(['x-shopify-hmac-sha256', 'x-shopify-shop-domain', 'x-shopify-topic']);
    expect(Object.keys(shopify.responses)).toEqual(['200', '401', '413', '500', '503']);
  });

  it('states the size limit the endpoint applies', () => {
    expect(JSON.stringify(erp)).toContain(`${MAX_BODY_BYTES} bytes`);
  });

  it('gives examples the contract accepts', () => {
    const examples = Object.values(erp.requestBody.content['application/json'].examples ?? {});
    expect(examples.length).toBeGreaterThan(0);
    for (const { value } of examples) expect(erpRequestSchema.safeParse(value).error).toBeUndefined();
    const receipt = erp.responses['202']?.content?.['application/json'].example;
    expect(erpReceiptSchema.safeParse(receipt).error).toBeUndefined();
  });

  it('refers only to schemas it defines', () => {
    const refs = [...JSON.stringify(openApi).matchAll(/"\$ref":"([^"]+)"/g)].map((match) => match[1]);
    expect(refs.length).toBeGreaterThan(0);
    for (const ref of refs) {
      expect(ref).toMatch(/^#\/components\/schemas\//);
      expect(openApi.components.schemas, String(ref)).toHaveProperty([
        String(ref).split('/').at(-1) as string,
      ]);
    }
  });
});
