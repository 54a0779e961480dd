import { type CountryCode, parsePhoneNumberFromString } from 'libphonenumber-js/max';

/** Emails are compared and sent trimmed; Klaviyo matches them case-insensitively. */
export function normalizeEmail(raw: string | null | undefined): string | undefined {
  const trimmed = raw?.trim();
  return trimmed ? trimmed : undefined;
}

export type PhoneNormalization =
  | { ok: true; e164: string }
  | { ok: false; reason: 'empty' | 'unparseable' | 'invalid' };

/** Converts a phone number as people type it to E.164, reading national numbers in `defaultRegion`. */
export function normalizePhone(raw: string | null | undefined, defaultRegion: string): PhoneNormalization {
  const trimmed = raw?.trim();
  if (!trimmed) return { ok: false, reason: 'empty' };
  const parsed = parsePhoneNumberFromString(trimmed, defaultRegion as CountryCode);
  if (!parsed) return { ok: false, reason: 'unparseable' };
  if (!parsed.isValid()) return { ok: false, reason: 'invalid' };
  return { ok: true, e164: parsed.number };
}
