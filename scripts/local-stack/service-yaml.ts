import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DEFAULT_SCHEMA, load, Type } from 'js-yaml';
import { SERVICE_DIR } from './offline.js';

/** CloudFormation's short-form tags in their long form, e.g. `!GetAtt Q.Arn` → `{"Fn::GetAtt": ["Q", "Arn"]}`. */
const cloudFormationSchema = DEFAULT_SCHEMA.extend([
  new Type('!Ref', { kind: 'scalar', construct: (name: string) => ({ Ref: name }) }),
  new Type('!GetAtt', { kind: 'scalar', construct: (path: string) => ({ 'Fn::GetAtt': path.split('.') }) }),
  new Type('!GetAtt', { kind: 'sequence', construct: (path: string[]) => ({ 'Fn::GetAtt': path }) }),
  new Type('!Sub', { kind: 'scalar', construct: (text: string) => ({ 'Fn::Sub': text }) }),
  new Type('!Sub', { kind: 'sequence', construct: (parts: unknown[]) => ({ 'Fn::Sub': parts }) }),
]);

/** A YAML file of the service (serverless.yml, infra/*.yml), CloudFormation's tags included. */
export async function readServiceYaml(path: string): Promise<Record<string, unknown>> {
  const text = await readFile(join(SERVICE_DIR, path), 'utf8');
  return load(text, { schema: cloudFormationSchema, filename: path }) as Record<string, unknown>;
}
