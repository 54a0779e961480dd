import { parseArgs } from 'node:util';

/**
 * The cost of a million changes at list prices, from the figures the other benchmarks measure
 * (each a flag, its default the latest recorded in bench/RESULTS.md), so the table there is
 * arithmetic anyone can re-run rather than sums done by hand. Three columns: a trickle (a worker
 * batch of 1) through one worker instance, through two taking turns, and full batches of 10.
 *
 *   npm run bench:cost [-- --worker-ms-b1 19.1 --intake-log-bytes 392 …]
 */
const measured = {
  /** Intake duration at its memory size (p50 on a full core ÷ its CPU share: bench:webhook). */
  'intake-ms': 10.5,
  'intake-memory-mb': 1024,
  /** The worker's billed ms a change at its memory size's CPU share (bench:webhook --worker-cpu-share). */
  'worker-ms-b1': 9.9,
  'worker-ms-b10': 14.3,
  'worker-memory-mb': 512,
  /** Log bytes (bench:webhook --show-log): the intake's line and metrics document a delivery. */
  'intake-log-bytes': 392,
  /** The worker's line and metrics document a change: one document an invocation. */
  'worker-log-bytes-b1': 503,
  'worker-log-bytes-b10': 246,
  /** The metrics documents' share of the above (EMF: the intake's 229 bytes, the worker's 289). */
  'intake-metrics-bytes': 229,
  'worker-metrics-bytes': 289,
  /** The quota ledger's write units and reads a change (bench:trickle; bench:throughput at full load). */
  'lease-units-b1-one': 0.161,
  'lease-units-b1-two': 0.303,
  'lease-units-b10': 0.062,
  'ledger-reads-b1-one': 0.001,
  'ledger-reads-b1-two': 0.3,
  'ledger-reads-b10': 0.074,
  /** Half of store traffic changes something, and each such decision is an audit item. */
  'audit-units': 0.5,
  /** Customers with no state item (new, email-only): their erasure record is read. */
  'erasure-reads': 0.2,
  /** Secrets Manager calls a month: two intake instances at 300 s, two worker instances at 3600 s. */
  'secret-calls': 2 * 288 * 30 + 2 * 24 * 30,
};
type Figure = keyof typeof measured;

const { values } = parseArgs({
  options: Object.fromEntries(Object.keys(measured).map((name) => [name, { type: 'string' as const }])),
});
const figure = (name: Figure) => Number(values[name] ?? measured[name]);

/** US East (N. Virginia) list prices, as looked up on 2026-12-01 (bench/RESULTS.md, Cost of 1,000,000 changes). */
const PRICE = {
  apiGatewayRequest: 1.0 / 1e6,
  lambdaRequest: 0.2 / 1e6,
  lambdaGbSecond: 0.0000133334,
  sqsFifoRequest: 0.5 / 1e6,
  writeUnit: 0.625 / 1e6,
  readUnit: 0.125 / 1e6,
  secretsCall: 0.05 / 10_000,
  logGb: 0.5,
};
const CHANGES = 1_000_000;

interface Column {
  name: string;
  batch: number;
  leaseUnits: number;
  ledgerReads: number;
}
const columns: Column[] = [
  {
    name: 'b = 1, one worker',
    batch: 1,
    leaseUnits: figure('lease-units-b1-one'),
    ledgerReads: figure('ledger-reads-b1-one'),
  },
  {
    name: 'b = 1, two workers',
    batch: 1,
    leaseUnits: figure('lease-units-b1-two'),
    ledgerReads: figure('ledger-reads-b1-two'),
  },
  {
    name: 'b = 10',
    batch: 10,
    leaseUnits: figure('lease-units-b10'),
    ledgerReads: figure('ledger-reads-b10'),
  },
];

const lambdaSeconds = (ms: number, memoryMb: number) =>
  (ms / 1000) * (memoryMb / 1024) * PRICE.lambdaGbSecond;
const workerLogBytes = (c: Column) =>
  c.batch === 1 ? figure('worker-log-bytes-b1') : figure('worker-log-bytes-b10');
const metricsBytes = (c: Column) => figure('intake-metrics-bytes') + figure('worker-metrics-bytes') / c.batch;

/** Each line: what a change costs in a column; `holds` names the guarantee a line pays for, if any. */
const lines: { name: string; holds?: string; perChange: (c: Column) => number }[] = [
  { name: 'API Gateway', holds: 'route throttling', perChange: () => PRICE.apiGatewayRequest },
  {
    name: 'Lambda requests',
    holds: 'intake + worker',
    perChange: (c) => (1 + 1 / c.batch) * PRICE.lambdaRequest,
  },
  {
    name: 'Lambda durations',
    holds: 'the work',
    perChange: (c) =>
      lambdaSeconds(figure('intake-ms'), figure('intake-memory-mb')) +
      lambdaSeconds(
        c.batch === 1 ? figure('worker-ms-b1') : figure('worker-ms-b10'),
        figure('worker-memory-mb'),
      ),
  },
  {
    name: 'SQS FIFO',
    holds: 'per-customer order',
    perChange: (c) => (1 + 2 / c.batch) * PRICE.sqsFifoRequest,
  },
  { name: 'DynamoDB: state write', holds: 'staleness guard', perChange: () => PRICE.writeUnit },
  {
    name: 'DynamoDB: state + erasure reads',
    holds: 'staleness, erasure',
    perChange: () => (1 + figure('erasure-reads')) * PRICE.readUnit,
  },
  {
    name: 'Secrets Manager',
    holds: 'cached keys',
    perChange: () => (figure('secret-calls') * PRICE.secretsCall) / CHANGES,
  },
  {
    name: 'Logs: the lines',
    holds: 'what happened',
    perChange: (c) =>
      ((figure('intake-log-bytes') + workerLogBytes(c) - metricsBytes(c)) / 1e9) * PRICE.logGb,
  },
  {
    name: 'DynamoDB: quota leases',
    perChange: (c) => c.leaseUnits * PRICE.writeUnit + c.ledgerReads * PRICE.readUnit,
  },
  { name: 'Logs: metrics documents', perChange: (c) => (metricsBytes(c) / 1e9) * PRICE.logGb },
  { name: 'DynamoDB: audit items', perChange: () => figure('audit-units') * PRICE.writeUnit },
];

const dollars = (perChange: number) => `$${(perChange * CHANGES).toFixed(2)}`;
const widths = [34, 20, ...columns.map(() => 20)];
const row = (cells: string[]) =>
  console.log(
    cells.map((cell, i) => (i < 2 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join(''),
  );

console.log(`A million changes at list prices (figures: bench/cost.ts defaults, or as given)`);
row(['line', 'holds', ...columns.map((c) => c.name)]);
for (const line of lines)
  row([line.name, line.holds ?? '', ...columns.map((c) => dollars(line.perChange(c)))]);
const total = (c: Column, which: (line: (typeof lines)[number]) => boolean = () => true) =>
  lines.filter(which).reduce((sum, line) => sum + line.perChange(c), 0);
row([
  'lines that hold a guarantee',
  '',
  ...columns.map((c) => dollars(total(c, (line) => line.holds !== undefined))),
]);
row(['total', '', ...columns.map((c) => dollars(total(c)))]);
console.log('Goals (issue 20): ≤ $4.50 at a trickle (b = 1), ≤ $4.00 with full batches (b = 10)');
