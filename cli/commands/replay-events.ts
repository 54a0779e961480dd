import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  type Message,
  ReceiveMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { createShopifyEventBridgeIntake } from '../../lib/composition.js';
import { loadConfig } from '../../lib/config.js';
import { type FailedInvocation, readFailedInvocation } from '../../lib/intake/failed-invocation.js';
import type { Telemetry } from '../../lib/observability/telemetry.js';
import type { ShopifyEventOutcome } from '../../lib/shopify/eventbridge.js';
import { commandLine, queueUrlOf } from '../command-line.js';
import { type CliIo, confirm, counted, EXIT_ATTENTION, EXIT_OK, positiveNumber, UsageError } from '../io.js';
import { cliSettings } from '../settings.js';

const USAGE = `Usage: identity-sync replay-events [--dry-run] [--yes] [options]

Sends the Shopify EventBridge events Lambda could not deliver (the changes queue was unavailable
through its three tries) through the shopify-eventbridge function's intake again: each event is
queued as a change (deduplicated by its webhook id, as always), ignored, or parked on the
dead-letter queue exactly as the function would have done, and its record is deleted from the
failure queue only then. Counts what it finds and asks first.
  --dry-run           count and list the records; send nothing, delete nothing
  --yes               send without asking (no terminal needed)
  --queue-url URL     the failure queue (default: SHOPIFY_EVENT_FAILURES_QUEUE_URL)
  --limit N           handle at most N records (default: 10000)
  -h, --help          this help

The intake reads the stack's settings as the function does: IDENTITY_CHANGES_QUEUE_URL,
DEAD_LETTER_QUEUE_URL, SYNC_STATE_TABLE, and SHOP_TENANTS, DEFAULT_TENANT and
SHOPIFY_EVENT_BUS_NAME as deployed. A record that is no Lambda invocation record is left on the
queue. At the first event that still cannot be queued, the run stops and leaves it there.`;

/** How long a record read stays hidden from other readers while it is sent. */
const READ_VISIBILITY_SECONDS = 60;

/** `identity-sync replay-events`: Shopify EventBridge events kept by Lambda, through the intake again. */
export const replayEvents = commandLine(
  USAGE,
  {
    options: {
      'dry-run': { type: 'boolean', default: false },
      yes: { type: 'boolean', default: false },
      'queue-url': { type: 'string' },
      limit: { type: 'string', default: '10000' },
    },
  },
  async ({ values }, io) => {
    const limit = positiveNumber('--limit', values.limit, { integer: true });
    const queueUrl = queueUrlOf(
      values['queue-url'],
      cliSettings(io.env).SHOPIFY_EVENT_FAILURES_QUEUE_URL,
      'pass --queue-url or set SHOPIFY_EVENT_FAILURES_QUEUE_URL (the failure queue)',
    );
    const dryRun = values['dry-run'];
    if (!dryRun && !values.yes && !io.stdin?.isTTY)
      throw new UsageError('replay-events asks before sending: pass --yes when no terminal can answer');
    const intake = dryRun
      ? undefined
      : createShopifyEventBridgeIntake(loadConfig(io.env), quietTelemetry(io));

    const sqs = new SQSClient({});
    const records = failureQueue(sqs, queueUrl);
    try {
      const seen = await records.readAll(limit);
      await records.release(seen.map(({ message }) => message));
      io.stdout.write(formatCount(seen));
      const usable = seen.filter((entry) => entry.record);
      if (dryRun || !intake || usable.length === 0)
        return seen.length > usable.length ? EXIT_ATTENTION : EXIT_OK;
      if (
        !values.yes &&
        !(await confirm(io, `Send ${counted(usable.length, 'event')} through the intake again? [y/N] `))
      )
        return EXIT_OK;

      const outcomes: Record<ShopifyEventOutcome['status'], number> = {
        queued: 0,
        ignored: 0,
        'dead-lettered': 0,
      };
      let unreadable = 0;
      let stopped: string | undefined;
      let sent = 0;
      // Hidden until the run ends, so that each is read once: what is left, unreadable or not sent.
      const left: Message[] = [];
      try {
        while (!stopped && sent + left.length < limit) {
          const batch = await records.read(limit - sent - left.length);
          if (batch.length === 0) break;
          for (const { message, record } of batch) {
            if (!record || stopped) {
              if (!record) unreadable++;
              left.push(message);
              continue;
            }
            try {
              const { status } = await intake(record.requestPayload);
              outcomes[status]++;
            } catch (error) {
              stopped = `an event could not be queued (${(error as Error).message}); it stays on the failure queue`;
              left.push(message);
              continue;
            }
            // Deleted only once the intake took the event (queued, ignored or parked).
            await records.remove(message);
            sent++;
          }
        }
      } finally {
        await records.release(left);
        io.stdout.write(formatDone(outcomes, unreadable));
      }
      if (stopped) {
        io.stderr.write(
          `identity-sync: ${stopped}; run replay-events again once the changes queue answers\n`,
        );
        return EXIT_ATTENTION;
      }
      return unreadable > 0 ? EXIT_ATTENTION : EXIT_OK;
    } finally {
      sqs.destroy();
    }
  },
);

interface ReadRecord {
  message: Message;
  record: FailedInvocation | undefined;
  problem: string | undefined;
}

/** The failure queue (a standard queue): records read hidden, then deleted or made visible again. */
function failureQueue(sqs: SQSClient, queueUrl: string) {
  const cannot = (what: string, error: unknown) =>
    new Error(`cannot ${what} the failure queue ${queueUrl}: ${(error as Error).message}`, { cause: error });
  const read = async (max: number): Promise<ReadRecord[]> => {
    const { Messages = [] } = await sqs
      .send(
        new ReceiveMessageCommand({
          QueueUrl: queueUrl,
          MaxNumberOfMessages: Math.min(10, max),
          VisibilityTimeout: READ_VISIBILITY_SECONDS,
          WaitTimeSeconds: 0,
        }),
      )
      .catch((error: unknown) => {
        throw cannot('read', error);
      });
    return Messages.map((message) => {
      const { record, problem } = readFailedInvocation(message.Body ?? '');
      return { message, record, problem };
    });
  };
  return {
    read,
    /** Every record up to `limit`, each once (each stays hidden until released). */
    async readAll(limit: number): Promise<ReadRecord[]> {
      const all: ReadRecord[] = [];
      while (all.length < limit) {
        const batch = await read(limit - all.length);
        if (batch.length === 0) break;
        all.push(...batch);
      }
      return all;
    },
    async release(messages: Message[]) {
      for (const message of messages) {
        await sqs
          .send(
            new ChangeMessageVisibilityCommand({
              QueueUrl: queueUrl,
              ReceiptHandle: message.ReceiptHandle,
              VisibilityTimeout: 0,
            }),
          )
          // It comes back by itself when its visibility timeout ends.
          .catch(() => undefined);
      }
    },
    async remove(message: Message) {
      await sqs
        .send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: message.ReceiptHandle }))
        .catch((error: unknown) => {
          throw cannot('delete a record from', error);
        });
    },
  };
}

/** The event's topic, shop and webhook id, for people (no customer data). */
function describeEvent(record: FailedInvocation): string {
  const metadata = (record.requestPayload as { detail?: { metadata?: Record<string, unknown> } })?.detail
    ?.metadata;
  const header = (name: string) => {
    const found = Object.entries(metadata ?? {}).find(([key]) => key.toLowerCase() === name);
    return typeof found?.[1] === 'string' ? found[1] : '?';
  };
  const { condition, approximateInvokeCount } = record.requestContext;
  return `${record.timestamp}  ${condition} after ${approximateInvokeCount} ${approximateInvokeCount === 1 ? 'try' : 'tries'}: ${header('x-shopify-topic')} from ${header('x-shopify-shop-domain')}, webhook ${header('x-shopify-webhook-id')}`;
}

export function formatCount(seen: ReadRecord[]): string {
  const usable = seen.filter((entry) => entry.record);
  const lines = [
    `Failure queue: ${counted(usable.length, 'event')} to send through the intake again.`,
    ...usable.map(({ record }) => `  ${describeEvent(record as FailedInvocation)}`),
  ];
  const unusable = seen.filter((entry) => !entry.record);
  if (unusable.length > 0) {
    lines.push(
      `${counted(unusable.length, 'message')} ${unusable.length === 1 ? 'is' : 'are'} no Lambda invocation record, left on the queue:`,
      ...unusable.map(({ message, problem }) => `  ${message.MessageId}: ${problem}`),
    );
  }
  return `${lines.join('\n')}\n`;
}

function formatDone(outcomes: Record<ShopifyEventOutcome['status'], number>, unreadable: number): string {
  const sent = outcomes.queued + outcomes.ignored + outcomes['dead-lettered'];
  return (
    `Sent ${counted(sent, 'event')}: ${outcomes.queued} queued, ${outcomes.ignored} ignored, ` +
    `${outcomes['dead-lettered']} parked on the dead-letter queue (identity-sync dead-letters)` +
    `${unreadable > 0 ? `; ${unreadable} unreadable left on the queue` : ''}.\n`
  );
}

/** The intake's log lines, briefly on stderr (the run's summary is on stdout); no metrics from a CLI. */
function quietTelemetry(io: CliIo): Telemetry {
  const line = (message: string) => io.stderr.write(`  ${message}\n`);
  return {
    log: {
      debug: () => undefined,
      info: () => undefined,
      warn: line,
      error: line,
    } as unknown as Telemetry['log'],
    count: () => undefined,
  };
}
