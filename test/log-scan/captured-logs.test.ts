import { describe, expect, it } from 'vitest';
import { latestRunLines } from '../support/log-capture.js';

/**
 * After the whole suite (`npm test` runs this last, on its own): every line the suite logged, the
 * functions' logs first among them, holds no key, no secret and no unmasked email or phone number.
 */
interface Finding {
  what: string;
  text: string;
  line: string;
}

const RULES: { what: string; pattern: RegExp; masked?: (text: string) => boolean }[] = [
  { what: 'Klaviyo private key', pattern: /\bpk_[A-Za-z0-9_]{4,}/g },
  { what: 'Standard Webhooks secret', pattern: /\bwhsec_[A-Za-z0-9+/=]{8,}/g },
  { what: 'Shopify webhook secret', pattern: /\bshpss_[A-Za-z0-9_]{4,}/g },
  // Masked: the local part cut to its first character and stars (lib/observability/mask.ts).
  {
    what: 'email',
    pattern: /[A-Za-z0-9._%+*-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/g,
    masked: (text) => /^[^@]?\*{3}@/.test(text),
  },
  { what: 'phone number', pattern: /\+\d{8,15}\b/g },
];

/** A line as written and, when it holds percent-escapes (a URL), decoded. */
function readings(line: string): string[] {
  if (!line.includes('%')) return [line];
  try {
    return [line, decodeURIComponent(line)];
  } catch {
    return [line];
  }
}

function findSecrets(lines: readonly string[]): Finding[] {
  const findings: Finding[] = [];
  for (const line of lines) {
    for (const reading of readings(line)) {
      for (const { what, pattern, masked } of RULES) {
        for (const [text] of reading.matchAll(pattern)) {
          if (!masked?.(text)) findings.push({ what, text, line: line.slice(0, 300) });
        }
      }
    }
  }
  return findings;
}

describe('the scan', () => {
  it('finds keys, secrets, emails and phone numbers, and lets masked ones through', () => {
    const found = findSecrets([
      '{"message":"x","key":"pk_live_abc123"}',
      'secret whsec_bG9jYWwtZGVtby1lcnA= and shpss_local_demo',
      'path=/api/profiles?filter=equals(email%2C%22ada%40example.com%22)',
      '"phone":"+14155550100"',
      '"email":"a***@example.com","phone":"********0100"',
    ]);
    expect(found.map(({ what, text }) => `${what}: ${text}`)).toEqual([
      'Klaviyo private key: pk_live_abc123',
      'Standard Webhooks secret: whsec_bG9jYWwtZGVtby1lcnA=',
      'Shopify webhook secret: shpss_local_demo',
      'email: ada@example.com',
      'phone number: +14155550100',
    ]);
  });
});

describe("the suite's logs", () => {
  const lines = latestRunLines();

  it('were captured (the functions log through the console the suite tees)', () => {
    expect(lines.length).toBeGreaterThan(1_000);
    expect(lines.some((line) => line.includes('Identity change queued'))).toBe(true);
  });

  it('hold no key, no secret and no unmasked email or phone number', () => {
    const findings = findSecrets(lines);
    const distinct = [
      ...new Map(findings.map((finding) => [`${finding.what}: ${finding.text}`, finding])).values(),
    ];
    expect(distinct.slice(0, 20), `${findings.length} findings`).toEqual([]);
  });
});
