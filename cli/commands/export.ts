import { parseArgs } from 'node:util';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import { createDynamoCustomerRecords } from '../../lib/adapters/dynamo-sync-state.js';
import { createSqsParkedLetters } from '../../lib/adapters/sqs-peek.js';
import { readCustomerExport } from '../../lib/privacy/erasure.js';
import { type CliIo, EXIT_OK, runCommand, UsageError } from '../io.js';
import { cliSettings, tenantOf } from '../settings.js';
import { printableJson } from '../terminal.js';

const USAGE = `Usage: identity-sync export <externalId> [--tenant T]

Prints, as JSON, everything the service holds about one customer: its state (Klaviyo profile id,
keyed digests of the identifiers, times, merged-into), its audit trail (emails and phones masked
and digested) and its letters parked on the dead-letter queue. What a customers/data_request
delivers. Reads SYNC_STATE_TABLE and DEAD_LETTER_QUEUE_URL; writes nothing.
  --tenant T      the customer's tenant (default: DEFAULT_TENANT)
  -h, --help      this help`;

/** The table and the dead-letter queue, as erasure and export read them. */
export function complianceStores(io: CliIo, command: string) {
  const settings = cliSettings(io.env);
  const table = settings.SYNC_STATE_TABLE;
  const deadLetterQueueUrl = io.env.DEAD_LETTER_QUEUE_URL;
  if (!table || !deadLetterQueueUrl) {
    throw new UsageError(
      `${command} reads the state table and the dead-letter queue: set SYNC_STATE_TABLE and DEAD_LETTER_QUEUE_URL (and AWS_REGION)`,
    );
  }
  const dynamodb = new DynamoDBClient({});
  const sqs = new SQSClient({});
  return {
    settings,
    records: createDynamoCustomerRecords(dynamodb, table),
    letters: createSqsParkedLetters(sqs, deadLetterQueueUrl),
    close: () => {
      dynamodb.destroy();
      sqs.destroy();
    },
  };
}

/** `identity-sync export <externalId>`: what is held about the customer, as JSON. */
export async function exportCustomer(args: string[], io: CliIo): Promise<number> {
  return runCommand(io, USAGE, async () => {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        tenant: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
    if (values.help) {
      io.stdout.write(`${USAGE}\n`);
      return EXIT_OK;
    }
    const [externalId, ...extra] = positionals;
    if (!externalId || extra.length > 0) throw new UsageError('give exactly one externalId');
    const stores = complianceStores(io, 'export');
    try {
      const now = new Date();
      const exported = await readCustomerExport(
        {
          tenant: tenantOf(values.tenant, stores.settings),
          externalId,
          source: 'cli',
          requestedAt: now.toISOString(),
        },
        { records: stores.records, letters: stores.letters, clock: () => new Date() },
      );
      io.stdout.write(`${printableJson(exported)}\n`);
    } finally {
      stores.close();
    }
    return EXIT_OK;
  });
}
