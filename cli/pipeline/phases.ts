import type { BulkStatus } from '../bulk-jobs.js';
import { counted } from '../io.js';
import type { Progress } from '../progress.js';

/**
 * The progress lines of a run's phases: lookups (of the `toLookUp` rows, and of those looked at
 * again after their job), bulk jobs, per-profile writes (their total grows as rows are sent their way).
 */
export interface Phases {
  lookedUp(rows: number): void;
  queued(rows: number): void;
  written(): void;
  bulk(status: BulkStatus): void;
}

export function phaseCounters(progress: Pick<Progress, 'phase'>, toLookUp: number): Phases {
  const lookups = { done: 0, total: toLookUp };
  const writes = { done: 0, total: 0 };
  return {
    lookedUp(rows) {
      lookups.done += rows;
      lookups.total = Math.max(lookups.total, lookups.done);
      progress.phase('lookups', { ...lookups, unit: 'rows' });
    },
    queued(rows) {
      writes.total += rows;
      progress.phase('per profile', { ...writes, unit: 'rows' });
    },
    written() {
      writes.done++;
      progress.phase('per profile', { ...writes, unit: 'rows' });
    },
    bulk(status) {
      // As Klaviyo counts them: profiles imported or failed, in the jobs so far.
      let done = 0;
      for (const job of status.jobs.values()) done += job.completed + job.failed;
      progress.phase('bulk jobs', { done, total: status.profiles, unit: 'profiles', note: jobsNote(status) });
    },
  };
}

/** `3 jobs: 1 complete, 2 processing` */
export function jobsNote({ jobs }: Pick<BulkStatus, 'jobs'>): string {
  const byStatus = new Map<string, number>();
  for (const { status } of jobs.values()) byStatus.set(status, (byStatus.get(status) ?? 0) + 1);
  const parts = [...byStatus].map(([status, count]) => `${count} ${status}`);
  return `${counted(jobs.size, 'job')}${parts.length > 0 ? `: ${parts.join(', ')}` : ''}`;
}
