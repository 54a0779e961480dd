import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import { erpReceiptSchema, erpRefusalSchema, erpRequestSchema } from '../lib/erp/contract.js';

/**
 * Writes the ERP contract's JSON Schemas, generated from the zod schemas the endpoint parses
 * with, into docs/erp-change.schema.json (standalone) and into `components.schemas` of
 * docs/openapi.json (everything else in that file is written by hand). Run it after changing
 * lib/erp/contract.ts: `npx tsx scripts/generate-contract-docs.ts`. A unit test fails while the
 * committed files differ from what this generates.
 */
const repo = resolve(import.meta.dirname, '..');
export const SCHEMA_FILE = resolve(repo, 'docs/erp-change.schema.json');
export const OPENAPI_FILE = resolve(repo, 'docs/openapi.json');

type JsonSchema = Record<string, unknown>;

/** The request body's schema, with the change and batch under `$defs`. */
export function erpRequestJsonSchema(): JsonSchema {
  return z.toJSONSchema(erpRequestSchema) as JsonSchema;
}

/** Request and response schemas as OpenAPI components, referring to each other there. */
export function erpOpenApiComponents(): Record<string, JsonSchema> {
  const components: Record<string, JsonSchema> = {};
  for (const schema of [erpRequestSchema, erpReceiptSchema, erpRefusalSchema]) {
    Object.assign(components, (z.toJSONSchema(schema) as { $defs: Record<string, JsonSchema> }).$defs);
  }
  return JSON.parse(JSON.stringify(components).replaceAll('"#/$defs/', '"#/components/schemas/'));
}

function generate() {
  const openApi = JSON.parse(readFileSync(OPENAPI_FILE, 'utf8'));
  openApi.components = { ...openApi.components, schemas: erpOpenApiComponents() };
  writeFileSync(SCHEMA_FILE, `${JSON.stringify(erpRequestJsonSchema(), null, 2)}\n`);
  writeFileSync(OPENAPI_FILE, `${JSON.stringify(openApi, null, 2)}\n`);
  // In the layout `npm run lint` checks, so regenerating leaves nothing to reformat.
  const biome = resolve(repo, 'node_modules/@biomejs/biome/bin/biome');
  execFileSync(process.execPath, [biome, 'format', '--write', SCHEMA_FILE, OPENAPI_FILE], {
    stdio: 'inherit',
  });
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) generate();
