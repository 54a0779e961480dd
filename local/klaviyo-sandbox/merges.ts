import type { ProfileStore } from './store.js';
import type { PendingMerge } from './types.js';

interface QueuedMerge extends PendingMerge {
  timer: ReturnType<typeof setTimeout> | undefined;
}

/**
 * Accepted `POST /api/profile-merge` requests waiting to be carried out, as Klaviyo queues an
 * asynchronous task. Each merge runs `delayMs` of real time after it was accepted (never with
 * `Infinity`), or earlier through `settle()`. Timers are unref'd so they never keep the process alive.
 * A merge whose destination or source is gone by then is dropped without effect.
 */
export class MergeQueue {
  readonly #store: ProfileStore;
  readonly #delayMs: number;
  #queue: QueuedMerge[] = [];
  #closed = false;

  constructor(store: ProfileStore, delayMs: number) {
    if (!(delayMs >= 0)) throw new RangeError(`mergeDelayMs must be ≥ 0 (or Infinity), got ${delayMs}.`);
    this.#store = store;
    this.#delayMs = delayMs;
  }

  enqueue(merge: PendingMerge): void {
    const queued: QueuedMerge = { ...merge, timer: undefined };
    // After close() (the sandbox stopped) nothing runs by itself any more.
    if (!this.#closed && Number.isFinite(this.#delayMs)) {
      queued.timer = setTimeout(() => this.#run(queued), this.#delayMs).unref();
    }
    this.#queue.push(queued);
  }

  /** Pending merges, oldest first (copies). */
  pending(): PendingMerge[] {
    return this.#queue.map(({ destinationId, sourceId, requestedAt }) => ({
      destinationId,
      sourceId,
      requestedAt,
    }));
  }

  /** Runs every pending merge now, oldest first; returns how many changed profiles. */
  settle(): number {
    let merged = 0;
    // A snapshot: nothing enqueues during the loop, but #run removes entries from #queue.
    for (const queued of [...this.#queue]) if (this.#run(queued)) merged++;
    return merged;
  }

  /** Drops every pending merge without running it. */
  clear(): void {
    for (const { timer } of this.#queue) clearTimeout(timer);
    this.#queue = [];
  }

  /** Drops pending merges and stops scheduling new ones. */
  close(): void {
    this.#closed = true;
    this.clear();
  }

  #run(queued: QueuedMerge): boolean {
    clearTimeout(queued.timer);
    this.#queue = this.#queue.filter((entry) => entry !== queued);
    return this.#store.merge(queued.destinationId, queued.sourceId) !== undefined;
  }
}
