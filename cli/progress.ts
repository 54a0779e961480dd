/**
 * Progress of a run on stderr: a line for the rows done, then one per phase under way (lookups,
 * bulk jobs, per-profile writes). On a terminal the lines are redrawn in place; elsewhere (CI
 * logs, files) one line, the phases in brackets at its end, is printed every 10% of the rows or
 * every 5 seconds, whichever comes first: about ten lines a run.
 */
export interface Progress {
  /** One more row done. */
  advance(): void;
  /** How far a phase is: `done` of `total` (which may grow as the run learns more), and a note. */
  phase(name: string, state: PhaseState): void;
  /** Draws or prints the line if it is due; a timer calls it so the line moves while rows wait. */
  refresh(): void;
  /** Draws the final line and stops the timer. */
  finish(): void;
}

export interface ProgressOptions {
  label: string;
  total: number;
  output: { write(text: string): unknown; isTTY?: boolean };
  now?: () => number;
}

const REDRAW_MS = 100;
const PRINT_EVERY_MS = 5_000;
const PRINT_EVERY_FRACTION = 0.1;
/** A rate over less time than this says nothing yet (the first rows come from a warm start). */
const RATE_AFTER_MS = 1_000;

export function createProgress({ label, total, output, now = Date.now }: ProgressOptions): Progress {
  const started = now();
  const tty = output.isTTY === true;
  let done = 0;
  let shownAt = 0;
  let shownDone = 0;
  const phases = new Map<string, PhaseState>();
  /** A phase changed since the lines were last shown. */
  let phasesChanged = false;
  /** Lines drawn below the first on a terminal, to move back up over when redrawing. */
  let drawnBelow = 0;

  const lines = () => [
    formatProgress({ label, done, total, elapsedMs: now() - started }, { bar: tty }),
    ...[...phases].map(([name, state]) => formatPhase(name, state, { bar: tty })),
  ];
  const show = () => {
    const block = lines();
    if (tty) {
      output.write(`${drawnBelow > 0 ? `\x1b[${drawnBelow}A` : ''}\r${block.join('\x1b[K\n')}\x1b[K`);
      drawnBelow = block.length - 1;
    } else {
      const phaseNotes = [...phases].map(
        ([name, state]) => `${name} ${state.done}/${state.total} ${state.unit}`,
      );
      output.write(`${block[0]}${phaseNotes.length > 0 ? `  (${phaseNotes.join(', ')})` : ''}\n`);
    }
    shownAt = now();
    shownDone = done;
    phasesChanged = false;
  };
  const rowsPerStep = Math.max(1, total * PRINT_EVERY_FRACTION);
  const due = () => {
    if (tty) return now() - shownAt >= REDRAW_MS;
    const newStep = Math.floor(done / rowsPerStep) > Math.floor(shownDone / rowsPerStep);
    return newStep || now() - shownAt >= PRINT_EVERY_MS;
  };
  const refresh = () => {
    if (due()) show();
  };
  const timer = setInterval(refresh, tty ? 1_000 : PRINT_EVERY_MS);
  timer.unref();
  // In a log, the run's first line already says it started; its first progress line is at 10%.
  if (tty) show();
  else shownAt = started;

  return {
    advance() {
      done++;
      refresh();
    },
    phase(name, state) {
      phases.set(name, state);
      phasesChanged = true;
    },
    refresh,
    finish() {
      clearInterval(timer);
      if (tty || shownDone !== done || phasesChanged) show();
      if (tty) output.write('\n');
    },
  };
}

export interface ProgressState {
  label: string;
  done: number;
  total: number;
  elapsedMs: number;
}

const BAR_WIDTH = 24;

/** `apply  [#########---------------]  37%  370/1000  61.2 rows/s  ETA 10 s` */
export function formatProgress(
  { label, done, total, elapsedMs }: ProgressState,
  { bar = false } = {},
): string {
  const fraction = total === 0 ? 1 : done / total;
  const rate = elapsedMs >= RATE_AFTER_MS ? done / (elapsedMs / 1000) : 0;
  const parts = [
    label,
    ...(bar ? [`[${'#'.repeat(Math.round(fraction * BAR_WIDTH)).padEnd(BAR_WIDTH, '-')}]`] : []),
    `${String(Math.floor(fraction * 100)).padStart(3)}%`,
    `${done}/${total}`,
    ...(rate > 0 ? [`${rate.toFixed(1)} rows/s`] : []),
  ];
  if (done < total && rate > 0) parts.push(`ETA ${formatDuration(((total - done) / rate) * 1000)}`);
  return parts.join('  ');
}

export interface PhaseState {
  done: number;
  total: number;
  /** What is counted, e.g. `rows`, `profiles`. */
  unit: string;
  note?: string;
}

const PHASE_WIDTH = 12;

/** `  bulk jobs     [####----]  50%  5000/10000 profiles  (1 complete, 1 processing)` */
export function formatPhase(name: string, { done, total, unit, note }: PhaseState, { bar = false } = {}) {
  const fraction = total === 0 ? 1 : done / total;
  return [
    `  ${name.padEnd(PHASE_WIDTH)}`,
    ...(bar ? [`[${'#'.repeat(Math.round(fraction * BAR_WIDTH)).padEnd(BAR_WIDTH, '-')}]`] : []),
    `${String(Math.floor(fraction * 100)).padStart(3)}%`,
    `${done}/${total} ${unit}`,
    ...(note ? [`(${note})`] : []),
  ].join('  ');
}

function formatDuration(ms: number): string {
  const seconds = Math.ceil(ms / 1000);
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  return minutes < 60
    ? `${minutes} min ${seconds % 60} s`
    : `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}
