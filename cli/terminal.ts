/**
 * What the CLI prints from outside data (ERP ids, letters, Klaviyo's answers, audit entries, files)
 * goes through here: a terminal obeys control characters, so an id holding ESC could clear the
 * screen, rewrite earlier lines, retitle the window or hide text, and bidirectional controls could
 * reorder what is shown. Each such character is shown as an escape instead (`\x1b`, `\r`, `\u202e`):
 * ANSI escape sequences lose their ESC (or C1 CSI) and print as plain text, and a value stays on
 * its line. Everything else is left as it is.
 */

// biome-ignore lint/suspicious/noControlCharactersInRegex: these are the characters we neutralise.
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/** What JSON.stringify leaves raw (it escapes C0 controls itself; its own line breaks are layout). */
const UNSAFE_IN_JSON = /[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

const SHORT: Record<string, string> = { '\t': '\\t', '\n': '\\n', '\r': '\\r' };

const escapeOf = (char: string) => {
  const code = char.charCodeAt(0);
  return SHORT[char] ?? (code < 0x100 ? `\\x${hex(code, 2)}` : `\\u${hex(code, 4)}`);
};
const hex = (code: number, digits: number) => code.toString(16).padStart(digits, '0');

/** One value, or one line, as it may be printed: no control character left raw, line breaks included. */
export const printable = (text: string): string => text.replace(UNSAFE, escapeOf);

/** Lines of text: each line made printable, the line breaks between them kept. */
export const printableLines = (text: string): string => text.split('\n').map(printable).join('\n');

/**
 * JSON for a terminal: JSON.stringify escapes C0 controls already; the rest (DEL, C1, bidirectional
 * controls) become \u escapes too, so the text is the same JSON value and prints safely.
 */
export const printableJson = (value: unknown): string =>
  JSON.stringify(value, null, 2).replace(UNSAFE_IN_JSON, (char) => `\\u${hex(char.charCodeAt(0), 4)}`);
