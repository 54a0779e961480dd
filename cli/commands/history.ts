import { normalizeEmail, normalizePhone } from '../../lib/normalize.js';
import { maskEmail, maskPhone } from '../../lib/observability/mask.js';
import type { AuditEntry } from '../../lib/ports.js';
import { type AuditedValue, digestOf, type IdentifierKey } from '../../lib/privacy/identifier-digest.js';
import { commandLine, oneExternalId } from '../command-line.js';
import { EXIT_OK, UsageError } from '../io.js';
import { identifierKeyOfRun, klaviyoKeyOf } from '../klaviyo-key.js';
import { openStore } from '../session.js';
import { cliSettings, tenantOf } from '../settings.js';
import { printable, printableJson } from '../terminal.js';

const USAGE = `Usage: identity-sync history <externalId> [--tenant T] [--limit N] [--json]
                             [--email E] [--phone P] [--secret-id S]

Prints the decisions recorded for one customer, by the worker and by apply and bind, newest
first: when, outcome, plan, profiles, identifiers before → after (emails and phones masked: the
trail keeps no value as it is), reason, and the event.
Reads the audit trail from the DynamoDB table named by SYNC_STATE_TABLE.
  --tenant T      the customer's tenant (default: DEFAULT_TENANT)
  --limit N       at most N decisions (default: 20)
  --json          the audit entries as a JSON array
  --email E       says at each step whether the profile held E before and after, without
  --phone P       showing any value (compared by the tenant's keyed digest)
  --secret-id S   the tenant secret the digest key comes from (else KLAVIYO_API_KEY, which is
                  right only for a tenant whose secret has no identifierKey)
  -h, --help      this help`;

/** `identity-sync history <externalId>`: the customer's audit trail. */
export const history = commandLine(
  USAGE,
  {
    options: {
      tenant: { type: 'string' },
      limit: { type: 'string', default: '20' },
      json: { type: 'boolean', default: false },
      email: { type: 'string' },
      phone: { type: 'string' },
      'secret-id': { type: 'string' },
    },
    allowPositionals: true,
  },
  async ({ values, positionals }, io) => {
    const externalId = oneExternalId(positionals);
    const limit = Number(values.limit);
    if (!Number.isInteger(limit) || limit < 1)
      throw new UsageError(`--limit must be a positive integer, got '${values.limit}'`);
    const settings = cliSettings(io.env);
    if (!settings.SYNC_STATE_TABLE) {
      throw new UsageError(
        'history reads the audit trail from DynamoDB: set SYNC_STATE_TABLE (and AWS_REGION)',
      );
    }
    const tenant = tenantOf(values.tenant, settings);
    const probes = probesOf(values.email, values.phone, settings.DEFAULT_PHONE_REGION);
    const key =
      probes.length > 0
        ? identifierKeyOfRun(await klaviyoKeyOf(tenant, values['secret-id'], settings))
        : undefined;

    const store = openStore(settings);
    try {
      const entries = await store.audit.history(tenant, externalId, limit);
      io.stdout.write(
        values.json
          ? `${printableJson(entries)}\n`
          : formatHistory(entries, tenant, externalId, key && { key, probes }),
      );
    } finally {
      store.close();
    }
    return EXIT_OK;
  },
);

/** A value asked about with --email or --phone, normalised as the intakes normalise it. */
export interface Probe {
  field: 'email' | 'phone_number';
  value: string;
}

function probesOf(email: string | undefined, phone: string | undefined, region: string): Probe[] {
  const probes: Probe[] = [];
  if (email !== undefined) {
    const value = normalizeEmail(email);
    if (!value) throw new UsageError('--email is not an email address');
    probes.push({ field: 'email', value });
  }
  if (phone !== undefined) {
    const normalized = normalizePhone(phone, region);
    if (!normalized.ok) throw new UsageError(`--phone is not a phone number (${normalized.reason})`);
    probes.push({ field: 'phone_number', value: normalized.e164 });
  }
  return probes;
}

export function formatHistory(
  entries: AuditEntry[],
  tenant: string,
  externalId: string,
  confirm?: { key: IdentifierKey; probes: Probe[] },
): string {
  const customer = printable(externalId);
  if (entries.length === 0) return `No decisions recorded for customer ${customer} of tenant ${tenant}.\n`;
  const lines = entries.map((entry) => {
    const line = formatEntry(entry);
    return confirm ? `${line}\n    ${confirmations(entry, confirm.key, confirm.probes)}` : line;
  });
  return `Decisions for customer ${customer} of tenant ${tenant}, newest first:\n${lines.join('\n')}\n`;
}

/** `<decidedAt>  <outcome>  <plan>  <profiles>  <field before → after, …>  (<reason>)  [<event>]` */
export function formatEntry(entry: AuditEntry): string {
  const profiles =
    entry.profileIds.length === 0
      ? 'no profile'
      : `${entry.profileIds.length === 1 ? 'profile' : 'profiles'} ${entry.profileIds.join(', ')}`;
  const parts = [entry.decidedAt, entry.outcome.padEnd(9), entry.plan.padEnd(16), profiles];
  const changes = Object.entries(entry.after ?? {}).map(([field, value]) =>
    entry.before
      ? `${field} ${shown(field, entry.before[field])} → ${shown(field, value)}`
      : `${field} → ${shown(field, value)}`,
  );
  if (changes.length > 0) parts.push(changes.join(', '));
  if (entry.reason) parts.push(`(${entry.reason})`);
  parts.push(`[${entry.sourceEventId}]`);
  // An audit entry holds outside data (ids, identifiers, reasons): no control character reaches the terminal.
  return printable(parts.join('  '));
}

/** An audited identifier for people: masked; an entry from before masking is masked on display. */
function shown(field: string, value: AuditedValue | string | null | undefined): string {
  if (value == null) return '(none)';
  if (typeof value !== 'string') return value.masked ?? '(held, digest only)';
  if (field === 'email') return maskEmail(value) as string;
  return field === 'phone_number' ? (maskPhone(value) as string) : value;
}

/**
 * Whether each asked-about value was the profile's before and after this step, by digest: says
 * yes or no, never a value. Entries of another key (rotated) cannot tell; entries from before
 * masking are compared as they are.
 */
export function confirmations(entry: AuditEntry, key: IdentifierKey, probes: Probe[]): string {
  return probes
    .map(({ field, value }) => {
      const name = field === 'email' ? 'email' : 'phone';
      const stages = (['before', 'after'] as const).filter(
        (stage) => entry[stage] && field in (entry[stage] ?? {}),
      );
      if (stages.length === 0) return `${name}: not recorded in this step`;
      const said = stages.map((stage) => {
        const held = entry[stage]?.[field];
        const matches = matchesHeld(held, field, value, key, entry.keyId);
        const verb = stage === 'before' ? 'held before' : 'set after';
        return matches === undefined
          ? `${verb}: cannot tell (another key)`
          : `${verb}: ${matches ? 'yes' : 'no'}`;
      });
      return `${name}: ${said.join(', ')}`;
    })
    .join('; ');
}

function matchesHeld(
  held: AuditedValue | string | null | undefined,
  field: Probe['field'],
  value: string,
  key: IdentifierKey,
  keyId: string | undefined,
): boolean | undefined {
  if (held == null) return false;
  if (typeof held === 'string')
    return field === 'email' ? held.toLowerCase() === value.toLowerCase() : held === value;
  if (keyId !== key.id) return undefined;
  return held.digest === digestOf(key, field, value);
}
