import { SQSClient } from '@aws-sdk/client-sqs';
import { peekQueue } from '../../lib/adapters/sqs-peek.js';
import { commandLine, queueUrlOf } from '../command-line.js';
import { classifyDeadLetter, newestFirst } from '../dead-letters/classify.js';
import { formatReport, queueNameOf } from '../dead-letters/format.js';
import { EXIT_ATTENTION, EXIT_OK, positiveNumber } from '../io.js';
import { cliSettings } from '../settings.js';
import { printableJson } from '../terminal.js';

const USAGE = `Usage: identity-sync dead-letters [--queue-url URL] [--limit N] [--reason R] [--json]

Reports what is parked on the dead-letter queue and why, and leaves every message there: a
summary by reason, then one line per letter, newest first: when, reason, tenant, customer,
[event], detail. Letters parked by intake or the worker carry their reason; a change SQS moved
there after repeated transient failures shows as retries_exhausted; anything else as unreadable.
Emails and phone numbers are masked; raw payloads are not shown.
The messages are received and then at once made visible again, so replay (identity-sync replay,
or the dead-letter queue redrive) still works; each run adds one to their receive count. A FIFO
queue shows only the first messages of each message group, and none that another reader holds
at the time.
  --queue-url URL  the dead-letter queue (default: DEAD_LETTER_QUEUE_URL)
  --limit N        read at most N messages (default: 100)
  --reason R       only the letters with reason R
  --json           the letters as a JSON array
  -h, --help       this help`;

/** `identity-sync dead-letters`: what is parked and why, without removing anything. */
export const deadLetters = commandLine(
  USAGE,
  {
    options: {
      'queue-url': { type: 'string' },
      limit: { type: 'string', default: '100' },
      reason: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  },
  async ({ values }, io) => {
    const queueUrl = queueUrlOf(
      values['queue-url'],
      cliSettings(io.env).DEAD_LETTER_QUEUE_URL,
      'dead-letters reads the dead-letter queue: pass --queue-url or set DEAD_LETTER_QUEUE_URL',
    );
    const limit = positiveNumber('--limit', values.limit, { integer: true });

    // Region, credentials and endpoint (AWS_ENDPOINT_URL_SQS) come from the environment, as everywhere.
    const sqs = new SQSClient({});
    try {
      const { messages, onQueue, problem } = await peekQueue(sqs, queueUrl, limit);
      const letters = newestFirst(messages.map(classifyDeadLetter));
      const shown = values.reason === undefined ? letters : letters.filter((l) => l.reason === values.reason);
      io.stdout.write(
        values.json
          ? `${printableJson(shown)}\n`
          : formatReport(shown, {
              queue: queueNameOf(queueUrl),
              read: letters.length,
              onQueue,
              limit,
              reason: values.reason,
            }),
      );
      if (problem) {
        io.stderr.write(`identity-sync: ${problem}\n`);
        return EXIT_ATTENTION;
      }
      return EXIT_OK;
    } finally {
      sqs.destroy();
    }
  },
);
