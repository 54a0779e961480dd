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

/** Masks the identifier attributes of any object that has them, leaving the rest. */
export function maskIdentifiers<
  T extends { email?: string | null; phoneNumber?: string | null; phone_number?: string | null },
>(value: T): T {
  const masked: T = { ...value };
  if ('email' in value) masked.email = maskEmail(value.email);
  if ('phoneNumber' in value) masked.phoneNumber = maskPhone(value.phoneNumber);
  if ('phone_number' in value) masked.phone_number = maskPhone(value.phone_number);
  return masked;
}
