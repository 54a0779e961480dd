import { parseArgs } from 'node:util';
import { type ColdStartTarget, prepareColdStarts, WORKER } from './cold-start.js';
import { median } from './measure.js';

/**
 * `npm run bench:cold [-- --runs 7]`: each function's cold load, i.e. importing its bundle (built
 * as serverless.yml builds it) plus its first invocation against the local peers, in a fresh Node
 * process each time (bench/lambda-host.ts) with the heap limits Lambda gives its memory size;
 * median of the runs. Side by side in the same run, the variants interleaved so that background
 * load falls on all alike:
 * - the worker with Klaviyo's official SDK in place of our client (bench/sdk-twin), same change;
 * - each function under --enable-source-maps (what NODE_OPTIONS would add in Lambda);
 * - with `--worker-flags "--lite-mode;--no-maglev"`, the worker under each of those Node flags too
 *   (after its deployed ones), to see what a flag costs the load.
 * Goals: under 150 ms each; the worker under half of its twin. BENCH_ESBUILD='{"minify":true}'
 * measures an esbuild option before serverless.yml gets it.
 */
const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '7' },
    /** More variants of the worker, each with these Node flags after its deployed ones (`;` between variants). */
    'worker-flags': { type: 'string', default: '' },
  },
});
const RUNS = Number(values.runs);
const GOAL_MS = 150;

interface Variant {
  label: string;
  target: ColdStartTarget;
  execArgv?: string[];
  samples: { importMs: number; firstMs: number; rssBytes: number }[];
}

const cold = await prepareColdStarts();
try {
  const ours = cold.targets.filter((t) => t.label === t.name);
  const twin = cold.targets.find((t) => t.label !== t.name);
  const variants: Variant[] = [
    ...cold.targets.map((target) => ({ label: target.label, target, samples: [] })),
    ...ours.map((target) => ({
      label: `${target.name} --enable-source-maps`,
      target,
      execArgv: ['--enable-source-maps'],
      samples: [],
    })),
    ...String(values['worker-flags'])
      .split(';')
      .map((flags) => flags.trim())
      .filter(Boolean)
      .flatMap((flags) => {
        const worker = ours.find((target) => target.name === WORKER);
        return worker
          ? [{ label: `${WORKER} ${flags}`, target: worker, execArgv: flags.split(' '), samples: [] }]
          : [];
      }),
  ];

  for (let run = 0; run < RUNS; run++) {
    for (const v of variants) {
      const fn = await cold.start(v.target, v.execArgv);
      try {
        const firstMs = await cold.firstInvocation(v.target, fn);
        const { rssBytes } = await fn.usage();
        v.samples.push({ importMs: fn.importMs, firstMs, rssBytes });
      } finally {
        await fn.stop();
      }
    }
  }

  const coldLoad = (v: Variant | undefined) => median(v?.samples.map((s) => s.importMs + s.firstMs) ?? []);
  const kib = (target: ColdStartTarget) =>
    (Object.values(target.bundle.metafile.outputs).find((o) => o.entryPoint)?.bytes ?? 0) / 1024;
  const row = (cells: string[]) =>
    `  ${(cells[0] ?? '').padEnd(40)} ${cells
      .slice(1)
      .map((cell, i) => cell.padStart([10, 8, 10, 12, 13, 8][i] ?? 8))
      .join(' ')}`;
  console.log(
    `Cold load: bundle import + first invocation against the local peers, fresh process each, median of ${RUNS} (Node ${process.version})`,
  );
  console.log(row(['function', 'bundle KiB', 'MB', 'import ms', '1st call ms', 'cold load ms', 'RSS MiB']));
  for (const v of variants) {
    console.log(
      row([
        v.label,
        kib(v.target).toFixed(0),
        String(v.target.memorySize),
        median(v.samples.map((s) => s.importMs)).toFixed(1),
        median(v.samples.map((s) => s.firstMs)).toFixed(1),
        coldLoad(v).toFixed(1),
        (median(v.samples.map((s) => s.rssBytes)) / 2 ** 20).toFixed(1),
      ]),
    );
  }
  const byLabel = (label: string | undefined) => variants.find((v) => v.label === label);
  const ratio = coldLoad(byLabel(WORKER)) / coldLoad(byLabel(twin?.label));
  const slowest = Math.max(...ours.map((target) => coldLoad(byLabel(target.label))));
  console.log(
    `  ${WORKER} ÷ klaviyo-api twin: ${ratio.toFixed(2)} (goal < 0.5: ${ratio < 0.5 ? 'met' : 'missed'})`,
  );
  console.log(
    `  slowest function: ${slowest.toFixed(1)} ms (goal < ${GOAL_MS} ms: ${slowest < GOAL_MS ? 'met' : 'missed'})`,
  );
} finally {
  await cold.close();
}
