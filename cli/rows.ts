import { emailProblem, readPhone } from '../lib/erp/contract.js';
import { type IdentityChange, identityChangeSchema } from '../lib/identity-change.js';
import { normalizeEmail } from '../lib/normalize.js';
import type { InputRow } from './input.js';
import { invalid, type RowResult } from './results.js';

/** What every row of a file shares. */
export interface RowContext {
  tenant: string;
  /** Region in which phone numbers without a country code are read. */
  region: string;
  /** The input file's name, in each change's sourceEventId. */
  fileName: string;
  now: () => Date;
}

export interface ApplyTask {
  line: number;
  externalId: string;
  change: IdentityChange;
}

/**
 * An `apply` row as the identity change it asks for (`source: 'cli'`), or why it cannot be one.
 * Fields: externalId (required), email, phone, previousEmail, previousPhone, occurredAt.
 */
export function applyTaskOf(row: InputRow, context: RowContext): ApplyTask | RowResult {
  if ('problem' in row) return invalid(row.line, row.problem);
  const { values } = row;
  const externalId = values.externalid;
  if (!externalId) return invalid(row.line, 'externalId is missing');

  // The ERP endpoint's checks, so a value it would refuse is refused here too, before any request.
  const phone = phoneOf(values.phone, context.region);
  const previousPhone = phoneOf(values.previousphone, context.region);
  const problems = [
    emailProblemOf('email', values.email),
    emailProblemOf('previousEmail', values.previousemail),
    phone?.problem && `phone: ${phone.problem}`,
    previousPhone?.problem && `previousPhone: ${previousPhone.problem}`,
  ].filter(Boolean);
  if (problems.length > 0) return invalid(row.line, problems.join('; '), externalId);

  const now = context.now().toISOString();
  const previous = {
    ...optional('email', normalizeEmail(values.previousemail)),
    ...optional('phoneNumber', previousPhone?.e164),
  };
  const parsed = identityChangeSchema.safeParse({
    tenant: context.tenant,
    source: 'cli',
    externalId,
    ...optional('email', normalizeEmail(values.email)),
    ...optional('phoneNumber', phone?.e164),
    ...(Object.keys(previous).length > 0 ? { previous } : {}),
    occurredAt: values.occurredat ?? now,
    sourceEventId: sourceEventIdOf(context, row.line),
    receivedAt: now,
  });
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) =>
      issue.path[0] === 'occurredAt'
        ? 'occurredAt: not an ISO 8601 date-time with an offset, such as 2026-05-01T12:00:00Z'
        : `${issue.path.join('.')}: ${issue.message}`,
    );
    return invalid(row.line, problems.join('; '), externalId);
  }
  return { line: row.line, externalId, change: parsed.data };
}

export interface BindTask {
  line: number;
  externalId: string;
  email?: string;
  phoneNumber?: string;
  /** `cli:<file>:<line>`, as apply's changes, for the audit trail. */
  sourceEventId: string;
}

/**
 * A `bind` row: a Shopify customer export (`Customer ID`, `Email`, `Phone`, …) or plain
 * `id,email,phone`. Spreadsheets keep long numbers and `+` as text with a leading apostrophe;
 * that apostrophe is not part of the value.
 */
export function bindTaskOf(row: InputRow, context: RowContext): BindTask | RowResult {
  if ('problem' in row) return invalid(row.line, row.problem);
  const { values } = row;
  const externalId = withoutApostrophe(values['customer id'] ?? values.id);
  if (!externalId) return invalid(row.line, 'Customer ID is missing');
  const phone = phoneOf(withoutApostrophe(values.phone), context.region);
  const problems = [emailProblemOf('Email', values.email), phone?.problem && `Phone: ${phone.problem}`];
  if (problems.some(Boolean)) return invalid(row.line, problems.filter(Boolean).join('; '), externalId);
  const email = normalizeEmail(values.email);
  if (!email && !phone) return invalid(row.line, 'no email or phone to find the profile by', externalId);
  return {
    line: row.line,
    externalId,
    ...optional('email', email),
    ...optional('phoneNumber', phone?.e164),
    sourceEventId: sourceEventIdOf(context, row.line),
  };
}

/** The columns each command needs in a CSV header (lower-cased names, any one of each group). */
export const REQUIRED_COLUMNS = {
  apply: [['externalid']],
  bind: [['customer id', 'id']],
};

type Phone = { e164: string; problem?: undefined } | { e164?: undefined; problem: string };

function phoneOf(raw: string | undefined, region: string): Phone | undefined {
  return raw ? readPhone(raw, region) : undefined;
}

const emailProblemOf = (field: string, raw: string | undefined) => {
  const problem = raw ? emailProblem(raw) : undefined;
  return problem && `${field}: ${problem}`;
};

const sourceEventIdOf = (context: RowContext, line: number) => `cli:${context.fileName}:${line}`;

const withoutApostrophe = (value: string | undefined) => value?.replace(/^'/, '') || undefined;

const optional = <K extends string>(key: K, value: string | undefined) =>
  (value === undefined ? {} : { [key]: value }) as Partial<Record<K, string>>;
