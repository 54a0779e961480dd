import { describe, expect, it } from 'vitest';
import { formatEntry } from '../../cli/commands/history.js';
import { formatDoctorReport } from '../../cli/doctor/report.js';
import { csvField } from '../../cli/duplicates-report.js';
import { runCommand } from '../../cli/io.js';
import { printable, printableJson, printableLines } from '../../cli/terminal.js';
import { captureIo, rawControlCharacters } from '../support/cli.js';

/** What the CLI writes from outside data: to a terminal (no control characters) and to CSV (no formulas). */

const HOSTILE = 'C-1\u001b[2J\u001b]0;owned\u0007\r\n\t\u009b31m\u202eevil\u0000';

describe('printable', () => {
  it('shows control characters and ANSI escapes as escapes, and leaves the rest as it is', () => {
    expect(printable(HOSTILE)).toBe('C-1\\x1b[2J\\x1b]0;owned\\x07\\r\\n\\t\\x9b31m\\u202eevil\\x00');
    expect(printable('Zoë — 顧客 +14155550100 a@example.com')).toBe('Zoë — 顧客 +14155550100 a@example.com');
    expect(printableLines(`one\n${HOSTILE}`)).toBe(
      `one\n${printable('C-1\u001b[2J\u001b]0;owned\u0007\r')}\n${printable('\t\u009b31m\u202eevil\u0000')}`,
    );
  });

  it('keeps JSON the same value, with nothing raw a terminal would act on', () => {
    const value = { externalId: HOSTILE, nested: ['\u0085', '\u2066'] };
    const text = printableJson(value);
    expect(rawControlCharacters(text)).toEqual([]);
    expect(JSON.parse(text)).toEqual(value);
    expect(text).toContain('"\\u0085"');
  });

  it('neutralises what each command prints from outside data', async () => {
    const entry = formatEntry({
      tenant: 'demo',
      externalId: HOSTILE,
      sourceEventId: `evt\u001b[1A`,
      outcome: 'applied',
      plan: 'patch',
      reason: `Klaviyo said \u001b[31mno`,
      profileIds: ['01P\u009b'],
      before: { email: 'a\u202e@example.com' },
      after: { email: 'b@example.com' },
      occurredAt: '2026-01-01T00:00:00Z',
      decidedAt: '2026-01-01T00:00:01Z',
    });
    expect(rawControlCharacters(entry)).toEqual([]);
    expect(entry).toContain('[evt\\x1b[1A]');

    const doctor = formatDoctorReport('demo', [
      { check: 'Klaviyo key', status: 'FAIL', detail: `refused (401: \u001b]0;owned\u0007)` },
    ]);
    expect(rawControlCharacters(doctor)).toEqual([]);
    expect(doctor).toContain('refused (401: \\x1b]0;owned\\x07)');

    // An error's message (Klaviyo's answer, a file's value) as the command's last word.
    const { io, written } = captureIo();
    await runCommand(io, 'usage', async () => {
      throw new Error(`Klaviyo answered 400: ${HOSTILE}`);
    });
    expect(written.stderr).toBe(`identity-sync: Klaviyo answered 400: ${printable(HOSTILE)}\n`);
  });
});

describe('csvField', () => {
  it.each([
    ['=1+1', "'=1+1"],
    ['+1415', "'+1415"],
    ['-2', "'-2"],
    ['@SUM(A1)', "'@SUM(A1)"],
    ['\t=1+1', "'\t=1+1"],
    ['\r=1+1', `"'\r=1+1"`],
    ['＝1+1', "'＝1+1"],
    ['＋1', "'＋1"],
    ['－1', "'－1"],
    ['＠SUM(A1)', "'＠SUM(A1)"],
    ['ada@example.com', 'ada@example.com'],
    ['Ada, Countess', '"Ada, Countess"'],
  ])('writes %j as %j: nothing a spreadsheet would run as a formula', (value, field) => {
    expect(csvField(value)).toBe(field);
  });
});
