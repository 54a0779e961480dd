import * as z from 'zod';
import { normalizePhone } from '../normalize.js';

/** The ERP contract's checks of one identifier (contract.ts), shared with the CLI's files. */

/** RFC 5321's longest address; checked first (abort), so nothing longer reaches the pattern. */
export const MAX_EMAIL_LENGTH = 254;
/**
 * Loose on purpose (Klaviyo has the last word): it catches values that are no address at all.
 * Linear: no two neighbouring parts can take the same character (the domain's first dot ends
 * `[^\s@.]*`), so a failing match never backtracks more than once per character.
 */
export const EMAIL_ADDRESS = /^\s*[^\s@]+@[^\s@][^\s@.]*\.[^\s@]+\s*$/;
export const emailAddress = z
  .string()
  .max(MAX_EMAIL_LENGTH, {
    abort: true,
    message: `must be an email address of at most ${MAX_EMAIL_LENGTH} characters`,
  })
  .regex(EMAIL_ADDRESS, 'must be an email address');

/**
 * The contract's checks of one identifier, for those who read changes from elsewhere (the CLI's
 * files): what is wrong with the value, or undefined when the ERP endpoint would take it.
 */
export function emailProblem(value: string): string | undefined {
  return emailAddress.safeParse(value).error?.issues[0]?.message;
}

/** A phone number as the ERP endpoint reads it: E.164, or national in `region`. */
export function readPhone(value: string, region: string): { e164: string } | { problem: string } {
  const normalized = normalizePhone(value, region);
  if (normalized.ok) return { e164: normalized.e164 };
  return {
    problem:
      normalized.reason === 'empty'
        ? 'is empty; null clears the phone number'
        : `is not a valid phone number (E.164, or national in ${region})`,
  };
}
