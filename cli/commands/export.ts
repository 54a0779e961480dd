import { readCustomerExport } from '../../lib/privacy/erasure.js';
import { commandLine, oneExternalId } from '../command-line.js';
import { complianceStores } from '../compliance-stores.js';
import { EXIT_OK } from '../io.js';
import { cliSettings, tenantOf } from '../settings.js';
import { printableJson } from '../terminal.js';

const USAGE = `Usage: identity-sync export <externalId> [--tenant T]

Prints, as JSON, everything the service holds about one customer: its state (Klaviyo profile id,
keyed digests of the identifiers, times, merged-into), its audit trail (emails and phones masked
and digested) and its letters parked on the dead-letter queue. What a customers/data_request
delivers. Reads SYNC_STATE_TABLE and DEAD_LETTER_QUEUE_URL; writes nothing.
  --tenant T      the customer's tenant (default: DEFAULT_TENANT)
  -h, --help      this help`;

/** `identity-sync export <externalId>`: what is held about the customer, as JSON. */
export const exportCustomer = commandLine(
  USAGE,
  { options: { tenant: { type: 'string' } }, allowPositionals: true },
  async ({ values, positionals }, io) => {
    const externalId = oneExternalId(positionals);
    const settings = cliSettings(io.env);
    const stores = complianceStores(settings, 'export');
    try {
      const now = new Date();
      const exported = await readCustomerExport(
        {
          tenant: tenantOf(values.tenant, settings),
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
  },
);
