/**
 * Progress of a run on stderr. On a terminal one line is redrawn in place (`\r`); elsewhere (CI
 * logs, files) a line is printed every 5% of the rows or every 5 seconds, whichever comes first.
 */
export interface Progress {
  /** One more row done. */
  advance(): void;
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
const PRINT_EVERY_FRACTION = 0.05;

export function createProgress({ label, total, output, now = Date.now }: ProgressOptions): Progress {
  const started = now();
  const tty = output.isTTY === true;
  let done = 0;
  let shownAt = 0;
  let shownDone = 0;

  const line = () => formatProgress({ label, done, total, elapsedMs: now() - started }, { bar: tty });
  const show = () => {
    output.write(tty ? `\r${line()}\x1b[K` : `${line()}\n`);
    shownAt = now();
    shownDone = done;
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
  show();

  return {
    advance() {
      done++;
      refresh();
    },
    refresh,
    finish() {
      clearInterval(timer);
      if (tty || shownDone !== done) show();
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
  const rate = elapsedMs > 0 ? done / (elapsedMs / 1000) : 0;
  const parts = [
    label,
    ...(bar ? [`[${'#'.repeat(Math.round(fraction * BAR_WIDTH)).padEnd(BAR_WIDTH, '-')}]`] : []),
    `${String(Math.floor(fraction * 100)).padStart(3)}%`,
    `${done}/${total}`,
    `${rate.toFixed(1)} rows/s`,
  ];
  if (done < total && rate > 0) parts.push(`ETA ${formatDuration(((total - done) / rate) * 1000)}`);
  return parts.join('  ');
}

function formatDuration(ms: number): string {
  const seconds = Math.ceil(ms / 1000);
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  return minutes < 60
    ? `${minutes} min ${seconds % 60} s`
    : `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}
