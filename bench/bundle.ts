import { createRequire } from 'node:module';
import { join } from 'node:path';
import { type BuildOptions, build, type Metafile, type Plugin } from 'esbuild';
import { SERVICE_DIR } from '../scripts/local-stack/offline.js';
import { readServiceYaml } from '../scripts/local-stack/service-yaml.js';

/** serverless-esbuild's own settings under custom.esbuild; every other key is an esbuild option. */
const PLUGIN_SETTINGS = new Set([
  'outputWorkFolder',
  'outputBuildFolder',
  'outputFileExtension',
  'watch',
  'exclude',
  'packager',
  'packagerOptions',
  'installExtraArgs',
  'keepOutputDirectory',
  'nativeZip',
  'concurrency',
  'zipConcurrency',
  'skipBuild',
  'skipRebuild',
  'skipBuildExcludeFns',
  'stripEntryResolveExtensions',
  'disposeContext',
  'config',
]);

interface ServiceDefinition {
  provider: { memorySize?: number };
  functions: Record<string, { handler: string; memorySize?: number; environment?: Record<string, unknown> }>;
  custom: { esbuild: Record<string, unknown> };
}

const serviceDefinition = async () =>
  (await readServiceYaml('serverless.yml')) as unknown as ServiceDefinition;

export interface DeployedFunction {
  name: string;
  /** Its source, e.g. functions/sync-worker.ts. */
  entry: string;
  memorySize: number;
  /** Its own environment in serverless.yml (e.g. the worker's MALLOC_ARENA_MAX, NODE_OPTIONS). */
  environment: Record<string, string>;
}

/** The functions serverless.yml deploys, each bundled on its own, with the memory each gets. */
export async function deployedFunctions(): Promise<DeployedFunction[]> {
  const { provider, functions } = await serviceDefinition();
  return Object.entries(functions).map(([name, fn]) => ({
    name,
    entry: `${fn.handler.slice(0, fn.handler.lastIndexOf('.'))}.ts`,
    memorySize: fn.memorySize ?? provider.memorySize ?? 1024,
    environment: Object.fromEntries(
      Object.entries(fn.environment ?? {}).filter(
        (entry): entry is [string, string] => typeof entry[1] === 'string',
      ),
    ),
  }));
}

/**
 * The heap limits Lambda's Node.js runtime gives a function of `memorySize` MB (its bootstrap:
 * about a tenth for the young generation, three semi-spaces, the rest for the old), so that a
 * process here collects garbage as the function would in Lambda.
 */
function lambdaHeapFlags(memorySize: number): string[] {
  const newSpace = Math.floor(memorySize / 10);
  return [
    `--max-semi-space-size=${Math.floor(newSpace / 3)}`,
    `--max-old-space-size=${memorySize - newSpace}`,
  ];
}

/**
 * Node's flags as Lambda starts the function: its runtime's heap limits for `memorySize`, then
 * what the function's exec wrapper puts after them (functions/node-flags.sh: LAMBDA_NODE_FLAGS).
 */
export function deployedNodeFlags({
  memorySize,
  environment,
}: Pick<DeployedFunction, 'memorySize' | 'environment'>) {
  return [
    ...lambdaHeapFlags(memorySize),
    ...(environment.LAMBDA_NODE_FLAGS ?? '').split(' ').filter(Boolean),
  ];
}

/** The esbuild options serverless.yml gives serverless-esbuild (custom.esbuild), so we measure what ships. */
async function deployedBuildOptions(): Promise<BuildOptions> {
  const { plugins, ...settings } = (await serviceDefinition()).custom.esbuild;
  const deployed = Object.fromEntries(Object.entries(settings).filter(([key]) => !PLUGIN_SETTINGS.has(key)));
  // serverless-esbuild require()s the file custom.esbuild.plugins names.
  if (typeof plugins === 'string')
    deployed.plugins = createRequire(import.meta.url)(join(SERVICE_DIR, plugins));
  // BENCH_ESBUILD='{"minify":true}' measures an option before serverless.yml gets it.
  return { ...deployed, ...JSON.parse(process.env.BENCH_ESBUILD ?? '{}') } as BuildOptions;
}

export interface Bundle {
  file: string;
  metafile: Metafile;
}

/**
 * Bundles `entry` (a path in the service) as serverless.yml bundles the functions, into `outBase`
 * plus the extension of the format (.mjs or .cjs). `replace` swaps a module for another where a
 * given module imports it (the SDK twin's client).
 */
export async function bundleAsDeployed(
  entry: string,
  outBase: string,
  replace?: { importer: RegExp; path: RegExp; with: string },
): Promise<Bundle> {
  const replacements: Plugin[] = replace
    ? [
        {
          name: 'replace-module',
          setup(esbuild) {
            esbuild.onResolve({ filter: replace.path }, (args) =>
              replace.importer.test(args.importer) ? { path: join(SERVICE_DIR, replace.with) } : undefined,
            );
          },
        },
      ]
    : [];
  const options = await deployedBuildOptions();
  const outfile = `${outBase}${options.format === 'cjs' ? '.cjs' : '.mjs'}`;
  const { metafile } = await build({
    ...options,
    absWorkingDir: SERVICE_DIR,
    entryPoints: [entry],
    outfile,
    metafile: true,
    logLevel: 'error',
    plugins: [...(options.plugins ?? []), ...replacements],
  });
  return { file: outfile, metafile };
}

/** Where a bundled byte came from: the npm package, the service's own file, or a required built-in. */
export function originOf(input: string): string {
  const builtin = input.match(/builtin:(.+)$/)?.[1];
  if (builtin) return `${builtin} (required)`;
  const inPackage = input.match(/node_modules\/((?:@[^/]+\/)?[^/]+)/);
  return inPackage?.[1] ?? input.replace(/^(\.\.\/)+/, '');
}

/** Bytes of the bundle by origin (package or own file), largest first. */
export function bytesByOrigin(bundle: Bundle): [string, number][] {
  const output = Object.values(bundle.metafile.outputs).find((o) => o.entryPoint);
  const totals = new Map<string, number>();
  for (const [input, { bytesInOutput }] of Object.entries(output?.inputs ?? {})) {
    const origin = originOf(input);
    totals.set(origin, (totals.get(origin) ?? 0) + bytesInOutput);
  }
  return [...totals].sort((a, b) => b[1] - a[1]);
}
