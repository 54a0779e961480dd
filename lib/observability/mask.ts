/** Log-safe forms of personal data: enough to recognise a value, never enough to recover it. */

export function maskEmail(email: string | null | undefined): string | null | undefined {
  if (email == null) return email;
  const at = email.lastIndexOf('@');
  if (at < 1) return '***';
  return `${email[0]}***@${email.slice(at + 1)}`;
}

export function maskPhone(phone: string | null | undefined): string | null | undefined {
  if (phone == null) return phone;
  return phone.length <= 4 ? '***' : `${'*'.repeat(phone.length - 4)}${phone.slice(-4)}`;
}

interface WithIdentifiers {
  email?: string | null;
  phoneNumber?: string | null;
  phone_number?: string | null;
  /** An ERP change's previous identifiers: as personal as the new ones. */
  previous?: WithIdentifiers;
}

/** Masks the identifier attributes of any object that has them (its `previous` ones too), leaving the rest. */
export function maskIdentifiers<T extends WithIdentifiers>(value: T): T {
  const masked: T = { ...value };
  if ('email' in value) masked.email = maskEmail(value.email);
  if ('phoneNumber' in value) masked.phoneNumber = maskPhone(value.phoneNumber);
  if ('phone_number' in value) masked.phone_number = maskPhone(value.phone_number);
  if (value.previous) masked.previous = maskIdentifiers(value.previous);
  return masked;
}

/**
 * What looks like an email in free text: something@something, up to a space, quote or bracket.
 * A match starts only where such a run starts (the lookbehind): tried from inside every run, a
 * long run without `@` took quadratic time.
 */
const EMAIL_IN_TEXT = /(?<![^\s@"'`<>()[\]{},;:\\])[^\s@"'`<>()[\]{},;:\\]+@[^\s@"'`<>()[\]{},;:\\]+/g;
/** What looks like an international phone number in free text: E.164, or written with spaces, dots, dashes, brackets. */
const PHONE_IN_TEXT = /\+\d[\d ().-]{5,20}\d/g;

/**
 * Masks what looks like an email or an international (`+…`) phone number inside free text, such
 * as an error's detail, with maskEmail and maskPhone; the rest of the text is kept. National
 * numbers without `+` are left alone: they cannot be told from ids.
 */
export function maskIdentifiersInText(text: string): string {
  return text
    .replace(EMAIL_IN_TEXT, (email) => maskEmail(email) as string)
    .replace(PHONE_IN_TEXT, (phone) => maskPhone(phone) as string);
}
