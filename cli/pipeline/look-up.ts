import type { BatchCommand, BatchRow } from '../batch.js';
import type { CliIo } from '../io.js';
import type { Session } from '../session.js';
import { printable } from '../terminal.js';
import type { Phases } from './phases.js';
import type { RunStop } from './stop.js';

export interface LookUpStage<Task extends BatchRow, Lookups> {
  command: Pick<BatchCommand<Task, Lookups>, 'lookUp'>;
  session: Session;
  dryRun: boolean;
  stop: RunStop;
  phases: Pick<Phases, 'lookedUp'>;
  io: Pick<CliIo, 'stderr'>;
}

/**
 * The third stage: a chunk's lookups, made together; undefined when they failed (its rows then
 * look up one by one) or the run is stopping. A refused key or an unreachable Klaviyo stops the run.
 */
export async function lookUpChunk<Task extends BatchRow, Lookups>(
  chunk: readonly Task[],
  stage: LookUpStage<Task, Lookups>,
): Promise<Lookups | undefined> {
  const { stop } = stage;
  if (chunk.length === 0 || stop.signal.aborted) return undefined;
  try {
    return await stage.command.lookUp(chunk, stage.session, stage.dryRun);
  } catch (error) {
    stop.onError(error);
    if (!stop.signal.aborted) {
      stage.io.stderr.write(
        `identity-sync: the lookups of lines ${chunk[0]?.line}–${chunk.at(-1)?.line} failed together` +
          ` (${printable((error as Error).message)}); each of those rows looks its customer up on its own\n`,
      );
    }
    return undefined;
  } finally {
    stage.phases.lookedUp(chunk.length);
  }
}
