import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { policiesFrom } from '../../lib/config.js';
import { eraseCustomer } from '../../lib/privacy/erasure.js';
import { type CliIo, confirm, EXIT_OK, runCommand, UsageError } from '../io.js';
import { identifierKeyOfRun, klaviyoKeyOf } from '../klaviyo-key.js';
import { openSession, openStore, type Session } from '../session.js';
import { tenantOf } from '../settings.js';
import { printable } from '../terminal.js';
import { complianceStores } from './export.js';

const USAGE = `Usage: identity-sync forget <externalId> [--tenant T] [--yes] [--secret-id S]

Erases one customer, as a customers/redact does: writes the erasure record first (from then on
the worker applies none of the customer's queued changes), asks Klaviyo to delete the profile
when the tenant's policy says onCustomerRedact: delete-klaviyo-profile, deletes the customer's
state and audit items and drops its letters from the dead-letter queue. The record keeps who
asked, when and what was deleted, never the id. Needs SYNC_STATE_TABLE, DEAD_LETTER_QUEUE_URL
and TENANT_SECRET_PREFIX (the erasure record is keyed with the tenant's identifier key).
  --tenant T      the customer's tenant (default: DEFAULT_TENANT)
  --yes           erase without asking (no terminal needed)
  --secret-id S   the tenant secret to read the keys from
  -h, --help      this help`;

/** `identity-sync forget <externalId>`: erases the customer through the worker's erasure core. */
export async function forget(args: string[], io: CliIo): Promise<number> {
  return runCommand(io, USAGE, async () => {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        tenant: { type: 'string' },
        yes: { type: 'boolean', default: false },
        'secret-id': { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
    if (values.help) {
      io.stdout.write(`${USAGE}\n`);
      return EXIT_OK;
    }
    const [externalId, ...extra] = positionals;
    if (!externalId || extra.length > 0) throw new UsageError('give exactly one externalId');
    if (!values.yes && !io.stdin?.isTTY)
      throw new UsageError('forget asks before erasing: pass --yes when no terminal can answer');
    const stores = complianceStores(io, 'forget');
    const tenant = tenantOf(values.tenant, stores.settings);
    try {
      const key = identifierKeyOfRun(await klaviyoKeyOf(tenant, values['secret-id'], stores.settings));
      if (
        !values.yes &&
        !(await confirm(
          io,
          `Erase everything held about customer ${printable(externalId)} of tenant ${tenant}? [y/N] `,
        ))
      )
        return EXIT_OK;
      // Klaviyo is opened only when the tenant's policy deletes profiles.
      let opened: Session | undefined;
      const session = async () =>
        (opened ??= await openSession(
          { tenant, ...(values['secret-id'] && { secretId: values['secret-id'] }) },
          stores.settings,
        ));
      const store = openStore(stores.settings);
      const now = new Date();
      const record = await eraseCustomer(
        {
          tenant,
          externalId,
          source: 'cli',
          sourceEventId: `cli:${randomUUID()}`,
          requestedAt: now.toISOString(),
        },
        {
          records: stores.records,
          state: store.state,
          letters: stores.letters,
          identifierKey: async () => key,
          klaviyo: async () => (await session()).klaviyo,
          policies: policiesFrom(stores.settings)(tenant),
          clock: () => new Date(),
        },
      );
      opened?.close();
      store.close();
      const { counts } = record;
      io.stdout.write(
        `Erased customer ${printable(externalId)} of tenant ${tenant}: ${counts.stateItems} state item(s), ` +
          `${counts.auditItems} audit item(s), ${counts.letters} parked letter(s); ` +
          `Klaviyo deletions requested: ${counts.klaviyoDeletions}.` +
          `${record.lettersIncomplete ? ' Not every parked letter could be read: run forget again later.' : ''}\n`,
      );
    } finally {
      stores.close();
    }
    return EXIT_OK;
  });
}
