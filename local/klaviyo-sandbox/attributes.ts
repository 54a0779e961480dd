import { invalidAttribute, invalidPointer } from './errors.js';
import {
  LOCATION_FIELDS,
  type LocationField,
  type ProfileChanges,
  type ProfileLocation,
  STRING_ATTRIBUTES,
  type StringAttribute,
} from './types.js';

// Deliberately loose: Klaviyo rejects obvious garbage, not every RFC 5322 corner case.
const EMAIL_PATTERN = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const E164_PATTERN = /^\+[1-9]\d{6,14}$/;

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const isStringAttribute = (name: string): name is StringAttribute =>
  (STRING_ATTRIBUTES as readonly string[]).includes(name);

const isLocationField = (name: string): name is LocationField =>
  (LOCATION_FIELDS as readonly string[]).includes(name);

/** Validates a request's `data.attributes` into changes; throws a 400 ApiError pointing at the bad attribute. */
export function parseAttributes(input: unknown): ProfileChanges {
  if (!isPlainObject(input)) throw invalidPointer('/data/attributes', "'attributes' must be an object.");
  const changes: ProfileChanges = {};
  for (const [name, value] of Object.entries(input)) {
    if (isStringAttribute(name)) changes[name] = parseStringAttribute(name, value);
    else if (name === 'location') changes.location = parseLocation(value);
    else if (name === 'properties') changes.properties = parseProperties(value);
    else throw invalidAttribute(name, `'${name}' is not a valid field for the resource 'profile'.`);
  }
  return changes;
}

function parseStringAttribute(name: StringAttribute, value: unknown): string | null {
  if (value === null) return null;
  if (typeof value !== 'string') throw invalidAttribute(name, `'${name}' must be a string or null.`);
  if (name === 'email' && !EMAIL_PATTERN.test(value)) throw invalidAttribute(name, 'Invalid email address.');
  if (name === 'phone_number' && !E164_PATTERN.test(value)) {
    throw invalidAttribute(
      name,
      'Invalid phone number format (Example of a valid phone number: +15005550006).',
    );
  }
  return value;
}

function parseLocation(value: unknown): Partial<ProfileLocation> | null {
  if (value === null) return null;
  if (!isPlainObject(value)) throw invalidAttribute('location', "'location' must be an object or null.");
  const location: Partial<Record<LocationField, unknown>> = {};
  for (const [field, fieldValue] of Object.entries(value)) {
    const pointerName = `location/${field}`;
    if (!isLocationField(field))
      throw invalidAttribute(pointerName, `'${field}' is not a valid location field.`);
    const allowsNumber = field === 'latitude' || field === 'longitude';
    const valid =
      fieldValue === null ||
      typeof fieldValue === 'string' ||
      (allowsNumber && typeof fieldValue === 'number');
    if (!valid) throw invalidAttribute(pointerName, `'${field}' has an invalid type.`);
    location[field] = fieldValue;
  }
  return location as Partial<ProfileLocation>;
}

function parseProperties(value: unknown): Record<string, unknown> | null {
  if (value === null) return null;
  if (!isPlainObject(value)) throw invalidAttribute('properties', "'properties' must be an object or null.");
  return value;
}

/** Import and create need something to identify the profile by. */
export function requireIdentifier(changes: ProfileChanges): void {
  const hasIdentifier = [changes.email, changes.phone_number, changes.external_id].some(
    (v) => typeof v === 'string',
  );
  if (!hasIdentifier) {
    throw invalidPointer(
      '/data/attributes',
      'A profile requires at least one of email, phone_number or external_id.',
    );
  }
}
