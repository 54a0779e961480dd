import { invalidParameter } from './errors.js';
import type { Profile } from './types.js';

/**
 * Whether a profile matches. `lookup`, when present, names identifier values every match holds
 * (from an `equals` or `any` at the top or inside `and`), so the store can use its index.
 */
export type ProfilePredicate = ((profile: Profile) => boolean) & {
  lookup?: { field: IdentityField; values: string[] };
};

type IdentityField = 'id' | 'email' | 'phone_number' | 'external_id';
type DateField = 'created' | 'updated';

const IDENTITY_FIELDS: readonly string[] = ['id', 'email', 'phone_number', 'external_id'];
const DATE_FIELDS: readonly string[] = ['created', 'updated'];

const filterError = (detail: string) => invalidParameter('filter', detail);

/**
 * Parses the subset of Klaviyo's filter syntax that GET /api/profiles supports:
 * `equals(field,"v")` and `any(field,["a","b"])` on id/email/phone_number/external_id,
 * `greater-than(field,datetime)` / `less-than(...)` on created/updated, combined with `and(...)`
 * or by separating expressions with commas. Strings may use double or single quotes, with
 * backslash escapes. `_kx` is not modelled. Throws a 400 ApiError (parameter "filter").
 */
export function parseProfileFilter(text: string): ProfilePredicate {
  const parser = new FilterParser(text);
  const predicates = [parser.expression()];
  while (parser.accept(',')) predicates.push(parser.expression());
  parser.expectEnd();
  return allOf(predicates);
}

function allOf(predicates: ProfilePredicate[]): ProfilePredicate {
  const all: ProfilePredicate = (profile) => predicates.every((predicate) => predicate(profile));
  const lookup = predicates.find((predicate) => predicate.lookup)?.lookup;
  return lookup ? Object.assign(all, { lookup }) : all;
}

class FilterParser {
  readonly #text: string;
  #pos = 0;

  constructor(text: string) {
    this.#text = text;
  }

  expression(): ProfilePredicate {
    const operator = this.#word();
    this.#expect('(');
    switch (operator) {
      case 'and':
        return this.#and();
      case 'equals':
        return this.#equals();
      case 'any':
        return this.#any();
      case 'greater-than':
      case 'less-than':
        return this.#compareDate(operator);
      default:
        throw filterError(`'${operator}' is not a supported filter operator.`);
    }
  }

  accept(char: string): boolean {
    this.#skipSpaces();
    if (this.#text[this.#pos] !== char) return false;
    this.#pos++;
    return true;
  }

  expectEnd(): void {
    this.#skipSpaces();
    if (this.#pos < this.#text.length)
      throw filterError(`Unexpected '${this.#text.slice(this.#pos)}' in filter.`);
  }

  #and(): ProfilePredicate {
    const predicates = [this.expression()];
    while (this.accept(',')) predicates.push(this.expression());
    this.#expect(')');
    return allOf(predicates);
  }

  #equals(): ProfilePredicate {
    const field = this.#field(IDENTITY_FIELDS, 'equals') as IdentityField;
    this.#expect(',');
    const value = this.#quoted();
    this.#expect(')');
    const equals: ProfilePredicate = (profile) => profile[field] === value;
    return Object.assign(equals, { lookup: { field, values: [value] } });
  }

  #any(): ProfilePredicate {
    const field = this.#field(IDENTITY_FIELDS, 'any') as IdentityField;
    this.#expect(',');
    this.#expect('[');
    const values = new Set([this.#quoted()]);
    while (this.accept(',')) values.add(this.#quoted());
    this.#expect(']');
    this.#expect(')');
    const any: ProfilePredicate = (profile) => {
      const value = profile[field];
      return value !== null && values.has(value);
    };
    return Object.assign(any, { lookup: { field, values: [...values] } });
  }

  #compareDate(operator: 'greater-than' | 'less-than'): ProfilePredicate {
    const field = this.#field(DATE_FIELDS, operator) as DateField;
    this.#expect(',');
    const raw = this.#peekQuote() ? this.#quoted() : this.#bareValue();
    const bound = Date.parse(raw);
    if (Number.isNaN(bound)) throw filterError(`'${raw}' is not a valid datetime.`);
    this.#expect(')');
    return operator === 'greater-than'
      ? (profile) => Date.parse(profile[field]) > bound
      : (profile) => Date.parse(profile[field]) < bound;
  }

  #field(allowed: readonly string[], operator: string): string {
    const field = this.#word();
    if (!allowed.includes(field)) {
      throw filterError(
        `'${field}' is not a valid field for operator '${operator}' on the resource 'profile'.`,
      );
    }
    return field;
  }

  #word(): string {
    this.#skipSpaces();
    const match = /^[A-Za-z_][A-Za-z0-9_.-]*/.exec(this.#text.slice(this.#pos));
    if (!match) throw filterError(`Expected a name at position ${this.#pos} of the filter.`);
    this.#pos += match[0].length;
    return match[0];
  }

  /** An unquoted value such as a datetime: everything up to the closing parenthesis. */
  #bareValue(): string {
    const end = this.#text.indexOf(')', this.#pos);
    if (end < 0) throw filterError('Unterminated filter expression.');
    const value = this.#text.slice(this.#pos, end).trim();
    this.#pos = end;
    return value;
  }

  #peekQuote(): boolean {
    this.#skipSpaces();
    const char = this.#text[this.#pos];
    return char === '"' || char === "'";
  }

  #quoted(): string {
    if (!this.#peekQuote())
      throw filterError(`Expected a quoted string at position ${this.#pos} of the filter.`);
    const quote = this.#text[this.#pos++];
    let value = '';
    while (this.#pos < this.#text.length) {
      const char = this.#text[this.#pos++];
      if (char === quote) return value;
      // A backslash escapes the next character (the quote itself or another backslash).
      value += char === '\\' ? (this.#text[this.#pos++] ?? '') : char;
    }
    throw filterError('Unterminated string in filter.');
  }

  #expect(char: string): void {
    if (!this.accept(char)) throw filterError(`Expected '${char}' at position ${this.#pos} of the filter.`);
  }

  #skipSpaces(): void {
    while (this.#text[this.#pos] === ' ') this.#pos++;
  }
}
