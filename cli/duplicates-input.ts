import type { RelayAddress } from '../lib/duplicates/match.js';
import { normalizeEmail } from '../lib/normalize.js';
import { readInputFile } from './input.js';
import { type CliIo, UsageError } from './io.js';
import { printable } from './terminal.js';

/** The relay file's rows; a row without an email or a customer is told on stderr and left out. */
export async function readRelayFile(path: string, io: CliIo): Promise<RelayAddress[]> {
  const relays: RelayAddress[] = [];
  for (const row of (await readInputFile(path)).rows) {
    const email = 'values' in row ? normalizeEmail(row.values.email) : undefined;
    const externalId = 'values' in row ? (row.values.externalid ?? row.values.external_id) : undefined;
    if (email && externalId) relays.push({ email, externalId });
    else {
      const problem = 'problem' in row ? row.problem : 'needs an email and an externalId';
      io.stderr.write(`identity-sync: ${path} line ${row.line}: ${printable(problem)}; left out\n`);
    }
  }
  return relays;
}

/** The emails of a customer export (Shopify's `Email` column, or any `email` column). */
export async function readCustomerEmails(path: string): Promise<string[]> {
  const emails = (await readInputFile(path)).rows.flatMap((row) => {
    const email = 'values' in row ? normalizeEmail(row.values.email) : undefined;
    return email?.includes('@') ? [email] : [];
  });
  if (emails.length === 0) throw new UsageError(`${path} holds no customer with an email`);
  return emails;
}
