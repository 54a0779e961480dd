import { appendFile } from 'node:fs/promises';
import { mergePair, type PairResult } from '../lib/duplicates/merge-pair.js';
import type { ReviewedPair } from '../lib/duplicates/review.js';
import { KlaviyoUnreachableError } from '../lib/klaviyo/errors.js';
import { maskEmail, maskIdentifiersInText } from '../lib/observability/mask.js';
import { DEFAULT_MERGE_WAIT } from '../lib/sync/execute.js';
import {
  type CliIo,
  confirm,
  counted,
  EXIT_ATTENTION,
  EXIT_INTERRUPTED,
  EXIT_OK,
  stopController,
} from './io.js';
import { isKeyRefused } from './klaviyo-key.js';
import { createProgress } from './progress.js';
import { runInCustomerOrder } from './run-in-order.js';
import type { Session } from './session.js';
import { printable } from './terminal.js';

/** A pair's result line in PREFIX.merges.ndjson. */
interface MergeResultLine {
  decidedAt: string;
  externalId: string;
  destinationId: string;
  sourceId: string;
  rule: string;
  confidence: number;
  outcome: PairResult['outcome'] | 'failed' | 'not_tried';
  reason: string;
}

/** Merges the pairs, each customer's one after another, after the count and a confirmation. */
export async function applyMerges(
  pairs: ReviewedPair[],
  options: { yes: boolean; concurrency: number; resultsPath: string },
  session: Session,
  io: CliIo,
): Promise<number> {
  if (pairs.length === 0) {
    io.stdout.write('Nothing to merge.\n');
    return EXIT_OK;
  }
  if (session.policies.dryRun) {
    io.stdout.write(`Tenant ${session.tenant}'s policy is a dry run: nothing is merged.\n`);
    return EXIT_OK;
  }
  io.stdout.write(
    `${counted(pairs.length, 'pair')} to merge. A merge cannot be undone: the source` +
      " profile's data moves to the customer's profile and Klaviyo deletes the source.\n",
  );
  if (!options.yes && !(await confirm(io, `Merge ${counted(pairs.length, 'pair')}? [y/N] `))) {
    io.stdout.write('Nothing merged.\n');
    return EXIT_OK;
  }

  const stop = stopController(io);
  const progress = createProgress({ label: 'merge', total: pairs.length, output: io.stderr });
  const counts = new Map<string, number>();
  const deps = { ...session, clock: () => new Date(), mergeWait: DEFAULT_MERGE_WAIT };
  const notTried: ReviewedPair[] = [];
  const finish = async (pair: ReviewedPair, result: Pick<MergeResultLine, 'outcome' | 'reason'>) => {
    const line: MergeResultLine = {
      decidedAt: new Date().toISOString(),
      externalId: pair.destination.external_id as string,
      destinationId: pair.destination.id,
      sourceId: pair.source.id,
      rule: pair.rule,
      confidence: pair.confidence,
      ...result,
    };
    await appendFile(options.resultsPath, `${JSON.stringify(line)}\n`);
    counts.set(line.outcome, (counts.get(line.outcome) ?? 0) + 1);
    io.stdout.write(`${formatMerge(pair, line)}\n`);
    progress.advance();
  };
  try {
    await runInCustomerOrder(
      pairs.map((pair) => ({ externalId: pair.destination.external_id as string, pair })),
      {
        concurrency: options.concurrency,
        signal: stop.signal,
        run: async ({ pair }) => {
          try {
            await finish(pair, await mergePair(pair, deps));
          } catch (error) {
            // A refused key or a Klaviyo that does not answer fails every pair after: stop.
            if (isKeyRefused(error) || error instanceof KlaviyoUnreachableError) stop.abort();
            await finish(pair, { outcome: 'failed', reason: maskIdentifiersInText(String(error)) });
          }
        },
        skip: ({ pair }) => void notTried.push(pair),
      },
    );
    for (const pair of notTried)
      await finish(pair, { outcome: 'not_tried', reason: 'the run stopped first' });
  } finally {
    progress.finish();
  }
  const summary = [...counts].map(([outcome, n]) => `${n} ${outcome}`).join(', ');
  io.stdout.write(`Merges: ${summary}. Results: ${options.resultsPath}.\n`);
  if (io.signal?.aborted) return EXIT_INTERRUPTED;
  return (counts.get('merged') ?? 0) === pairs.length ? EXIT_OK : EXIT_ATTENTION;
}

/** `merged  customer C-1  01DEST <- 01SRC (a***@gmial.com)  misspelt_domain 0.95  (reason)`: emails masked. */
const formatMerge = (pair: ReviewedPair, line: MergeResultLine) =>
  printable(
    [
      line.outcome.padEnd(13),
      `customer ${line.externalId}`,
      `${line.destinationId} <- ${line.sourceId} (${maskEmail(pair.source.email) ?? 'no email'})`,
      `${line.rule} ${line.confidence}`,
      ...(line.outcome === 'merged' ? [] : [`(${line.reason})`]),
    ].join('  '),
  );
