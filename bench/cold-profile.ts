import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { SourceMap } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { SERVICE_DIR } from '../scripts/local-stack/offline.js';
import { type Bundle, bytesByOrigin, originOf } from './bundle.js';
import { prepareColdStarts } from './cold-start.js';

/**
 * `npm run bench:cold-profile [-- --runs 3]`: where each function's cold load goes, by module.
 * Each function runs as in bench:cold (fresh process, import, first invocation) under
 * `--cpu-prof`; every sample is charged to the nearest frame of the bundle's own code, mapped
 * through the source map to its npm package or source file, so time spent in Node internals on a
 * module's behalf (its `require`s, crypto, sockets) counts as that module's. Samples with no bundle
 * frame on the stack are V8 and Node's own: compiling the bundle's source, loading built-ins the
 * bundle imports, garbage collection. Prints, per function and phase (import, first call), the
 * milliseconds by origin, average of the runs, next to the bytes each origin adds to the bundle.
 */
const { values } = parseArgs({
  options: { runs: { type: 'string', default: '3' }, top: { type: 'string', default: '14' } },
});
const RUNS = Number(values.runs);
const TOP = Number(values.top);

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

type Phase = 'import' | 'first call';
/** ms by origin and phase, summed over runs. */
type Tally = Map<string, Record<Phase, number>>;

/** What a sample with no bundle frame on its stack is spent on. */
function outsideBundle(frame: ProfileNode['callFrame']): string {
  if (frame.functionName === '(garbage collector)') return '(garbage collection)';
  if (/compileSourceTextModule|compileFunction|wrapSafe/.test(frame.functionName))
    return '(compiling the bundle)';
  if (frame.url.startsWith('node:')) return '(Node built-ins)';
  return '(V8 and Node, other)';
}

async function tallyProfile(file: string, bundle: Bundle, importEndedUs: number, tally: Tally) {
  const profile = JSON.parse(await readFile(file, 'utf8')) as CpuProfile;
  const map = new SourceMap(JSON.parse(await readFile(`${bundle.file}.map`, 'utf8')));
  const mapDir = dirname(bundle.file);
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parentOf = new Map<number, ProfileNode>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node);
  const bundleUrl = `file://${bundle.file}`;
  const originCache = new Map<number, string>();

  const originOfNode = (leaf: ProfileNode): string | undefined => {
    const cached = originCache.get(leaf.id);
    if (cached) return cached;
    let origin: string | undefined;
    for (let node: ProfileNode | undefined = leaf; node; node = parentOf.get(node.id)) {
      if (node.callFrame.url !== bundleUrl) continue;
      const entry = map.findEntry(node.callFrame.lineNumber, node.callFrame.columnNumber) as {
        originalSource?: string;
      };
      if (!entry.originalSource) continue;
      origin = originOf(relative(SERVICE_DIR, resolve(mapDir, entry.originalSource)));
      break;
    }
    if (
      origin === undefined &&
      (leaf.callFrame.functionName === '(idle)' || leaf.callFrame.functionName === '(program)')
    )
      return undefined;
    origin ??= outsideBundle(leaf.callFrame);
    originCache.set(leaf.id, origin);
    return origin;
  };

  let at = profile.startTime;
  profile.samples.forEach((id, i) => {
    const delta = profile.timeDeltas[i] ?? 0;
    at += delta;
    const node = byId.get(id);
    const origin = node && originOfNode(node);
    if (!origin) return;
    const row = tally.get(origin) ?? { import: 0, 'first call': 0 };
    row[at <= importEndedUs ? 'import' : 'first call'] += delta / 1000;
    tally.set(origin, row);
  });
}

const cold = await prepareColdStarts();
const profiles = await mkdtemp(join(tmpdir(), 'klaviyo-identity-sync-profile-'));
try {
  console.log(`Cold-load profile by origin, ms (mean of ${RUNS} runs; --cpu-prof, 100 µs sampling)`);
  for (const target of cold.targets) {
    const tally: Tally = new Map();
    for (let run = 0; run < RUNS; run++) {
      const dir = join(profiles, `${target.label.replace(/\W+/g, '-')}-${run}`);
      const fn = await cold.start(target, [
        '--cpu-prof',
        '--cpu-prof-dir',
        dir,
        '--cpu-prof-interval',
        '100',
      ]);
      await cold.firstInvocation(target, fn);
      await fn.stop();
      const [file] = await readdir(dir);
      if (!file) throw new Error(`${target.label}: no CPU profile written`);
      await tallyProfile(join(dir, file), target.bundle, fn.importEndedUs, tally);
    }
    const bytes = new Map(bytesByOrigin(target.bundle));
    const rows = [...tally].map(([origin, ms]) => ({
      origin,
      import: ms.import / RUNS,
      first: ms['first call'] / RUNS,
    }));
    rows.sort((a, b) => b.import + b.first - (a.import + a.first));
    const sum = (of: 'import' | 'first') => rows.reduce((total, row) => total + row[of], 0);
    console.log(
      `\n${target.label}: import ${sum('import').toFixed(1)} ms, first call ${sum('first').toFixed(1)} ms of CPU`,
    );
    console.log(
      `  ${'origin'.padEnd(44)} ${'import'.padStart(7)} ${'1st call'.padStart(8)} ${'bundle KiB'.padStart(10)}`,
    );
    const shown = rows.slice(0, TOP);
    const rest = rows.slice(TOP);
    for (const row of shown) {
      const kib = bytes.has(row.origin) ? ((bytes.get(row.origin) ?? 0) / 1024).toFixed(0) : '';
      console.log(
        `  ${row.origin.padEnd(44)} ${row.import.toFixed(1).padStart(7)} ${row.first.toFixed(1).padStart(8)} ${kib.padStart(10)}`,
      );
    }
    const restOf = (of: 'import' | 'first') => rest.reduce((total, row) => total + row[of], 0).toFixed(1);
    console.log(
      `  ${`(${rest.length} others)`.padEnd(44)} ${restOf('import').padStart(7)} ${restOf('first').padStart(8)}`,
    );
  }
} finally {
  await cold.close();
  await rm(profiles, { recursive: true, force: true });
}
