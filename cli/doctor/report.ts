import { printable } from '../terminal.js';
import type { CheckResult } from './checks.js';

/** One line per check, then the verdict. */
export function formatDoctorReport(tenant: string, results: CheckResult[]): string {
  const width = Math.max(...results.map((result) => result.check.length));
  const lines = results.map(
    // A detail can quote Klaviyo's or AWS's answer: no control character reaches the terminal.
    (result) => printable(`  ${result.status.padEnd(4)}  ${result.check.padEnd(width)}  ${result.detail}`),
  );
  const failed = results.filter((result) => result.status === 'FAIL').length;
  const skipped = results.filter((result) => result.status === 'skip').length;
  const also = skipped > 0 ? ` (${skipped} skipped)` : '';
  const verdict =
    failed === 0
      ? `No check failed${also}: tenant ${tenant} is ready.`
      : `${failed} of ${results.length} checks failed${also}.`;
  return `Checks for tenant ${tenant}:\n${lines.join('\n')}\n${verdict}\n`;
}
