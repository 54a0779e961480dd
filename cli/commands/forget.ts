import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { policiesFrom } from '../../lib/config.js';
import { eraseCustomer } from '../../lib/privacy/erasure.js';
import { commandLine, oneExternalId } from '../command-line.js';
import { complianceStores } from '../compliance-stores.js';
import { confirm, EXIT_OK, UsageError } from '../io.js';
import { identifierKeyOfRun, klaviyoKeyOf } from '../klaviyo-key.js';
import { openSession, openStore, type Session } from '../session.js';
import { cliSettings, tenantOf } from '../settings.js';
import { printable } from '../terminal.js';

const USAGE = `Usage: identity-sync forget <externalId> [--tenant T] [--yes] [--secret-id S] [--settle-seconds N]

Erases one customer, as a customers/redact does: writes the erasure record first (from then on
the worker applies none of the customer's queued changes), asks Klaviyo to delete the profile
when the tenant's policy says onCustomerRedact: delete-klaviyo-profile, deletes the customer's
state and audit items and drops its letters from the dead-letter queue. The record keeps who
asked, when and what was deleted, never the id. Needs SYNC_STATE_TABLE, DEAD_LETTER_QUEUE_URL
and TENANT_SECRET_PREFIX (the erasure record is keyed with the tenant's identifier key).
It erases outside the queue, so a change the worker was applying at that moment may still write
the customer's state or audit item: after --settle-seconds (default 65, the worker's 60 s timeout
and a margin) it deletes the customer's items once more.
  --tenant T            the customer's tenant (default: DEFAULT_TENANT)
  --yes                 erase without asking (no terminal needed)
  --secret-id S         the tenant secret to read the keys from
  --settle-seconds N    how long to wait before the second sweep (0: none)
  -h, --help            this help`;

/**
 * The worker's timeout (serverless.yml) and a margin: a change it was applying has ended by then
 * (test/infra/template.test.ts holds it above the packaged timeout).
 */
export const SETTLE_SECONDS = 65;

/** `identity-sync forget <externalId>`: erases the customer through the worker's erasure core. */
export const forget = commandLine(
  USAGE,
  {
    options: {
      tenant: { type: 'string' },
      yes: { type: 'boolean', default: false },
      'secret-id': { type: 'string' },
      'settle-seconds': { type: 'string' },
    },
    allowPositionals: true,
  },
  async ({ values, positionals }, io) => {
    const externalId = oneExternalId(positionals);
    const settleSeconds = Number(values['settle-seconds'] ?? SETTLE_SECONDS);
    if (!(Number.isFinite(settleSeconds) && settleSeconds >= 0))
      throw new UsageError(
        `--settle-seconds must be a number of seconds, 0 or more, not '${values['settle-seconds']}'`,
      );
    if (!values.yes && !io.stdin?.isTTY)
      throw new UsageError('forget asks before erasing: pass --yes when no terminal can answer');
    const settings = cliSettings(io.env);
    const stores = complianceStores(settings, 'forget');
    const tenant = tenantOf(values.tenant, settings);
    try {
      const key = identifierKeyOfRun(await klaviyoKeyOf(tenant, values['secret-id'], settings));
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
          settings,
        ));
      const store = openStore(settings);
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
          policies: policiesFrom(settings)(tenant),
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
      if (settleSeconds > 0) {
        // The worker reads the erasure record only for a customer with no state item; a change it
        // was already applying may write one after the erasure. Once it has ended, delete again.
        io.stdout.write(
          `Waiting ${settleSeconds} s for changes being applied to end, then sweeping again…\n`,
        );
        await sleep(settleSeconds * 1_000);
        const swept = await stores.records.eraseCustomer(tenant, externalId);
        io.stdout.write(
          `Swept again: ${swept.stateItems} state item(s), ${swept.auditItems} audit item(s) written meanwhile.\n`,
        );
      }
    } finally {
      stores.close();
    }
    return EXIT_OK;
  },
);
