import { describe, expect, it } from 'vitest';
import {
  type CheckResult,
  causeOf,
  klaviyoVerdict,
  secretAdvice,
  webhookVerdict,
} from '../../cli/doctor/checks.js';
import { formatDoctorReport } from '../../cli/doctor/report.js';
import { identitySync } from '../../cli/identity-sync.js';
import { PermanentError, TransientError } from '../../lib/errors.js';
import { Reason } from '../../lib/reasons.js';
import { captureIo } from '../support/cli.js';

const REVISION = '2026-10-15';

describe("Klaviyo's answer to one GET /api/profiles", () => {
  it('passes on 200', () => {
    expect(klaviyoVerdict(200, undefined, REVISION)).toMatchObject({ status: 'ok' });
  });

  it.each([
    [
      401,
      'Missing or invalid private key.',
      /refused \(401: Missing or invalid private key\.\): put a valid private key/,
    ],
    [403, undefined, /profiles:read and profiles:write scopes/],
    [429, undefined, /run doctor again in a minute/],
    [503, undefined, /on its side; try again later/],
    [400, "Invalid revision '2026-10-15'", /revision 2026-10-15 refused .*set KLAVIYO_REVISION/],
    [400, 'Something else.', /^Klaviyo answered 400: Something else\.$/],
  ])('fails on %i, saying what to do', (status, detail, advice) => {
    const verdict = klaviyoVerdict(status, detail, REVISION);
    expect(verdict.status).toBe('FAIL');
    expect(verdict.detail).toMatch(advice);
  });
});

describe('the webhook’s answer to an unsigned, empty delivery', () => {
  const url = 'https://api.example/webhooks/shopify';

  it('passes on 401: the webhook is there and refuses what is not signed', () => {
    expect(webhookVerdict(401, url)).toMatchObject({ status: 'ok' });
  });

  it.each([
    [404, /no such route; the URL ends in \/webhooks\/shopify/],
    [500, /the function fails; read its log/],
    [200, /not 401: is it this service's webhook\?/],
  ])('fails on %i', (status, advice) => {
    const verdict = webhookVerdict(status, url);
    expect(verdict.status).toBe('FAIL');
    expect(verdict.detail).toMatch(advice);
  });
});

describe('advice on a tenant secret that cannot be read', () => {
  const id = 'klaviyo-identity-sync/prod/tenants/acme';

  it.each([
    [new PermanentError(Reason.TenantSecretMissing, 'missing'), /does not exist: create it/],
    [
      new PermanentError(Reason.TenantSecretInvalid, `Secret ${id} is malformed`),
      /is malformed: fix the secret's JSON/,
    ],
    [
      new PermanentError(Reason.TenantSecretUnreadable, 'cannot be read'),
      /allow secretsmanager:GetSecretValue/,
    ],
    [new TransientError(Reason.TenantSecretUnavailable, 'down'), /check AWS_REGION, the credentials/],
  ])('%s', (error, advice) => {
    expect(secretAdvice(error, id)).toMatch(advice);
  });

  it('says the region is missing when that is the cause, not that Secrets Manager failed', () => {
    const error = new TransientError(Reason.TenantSecretUnavailable, `Secrets Manager failed for ${id}`, {
      cause: new Error('Region is missing'),
    });
    expect(secretAdvice(error, id)).toBe(
      `Secrets Manager did not answer for ${id} (no AWS region: set AWS_REGION, e.g. us-east-1): check AWS_REGION, the credentials and AWS_ENDPOINT_URL_SECRETS_MANAGER`,
    );
    const refused = new TransientError(Reason.TenantSecretUnavailable, 'down', {
      cause: Object.assign(new Error('connect'), { name: 'TypeError', cause: { code: 'ECONNREFUSED' } }),
    });
    expect(causeOf(refused)).toBe('TypeError: ECONNREFUSED');
  });
});

describe('the report', () => {
  const results: CheckResult[] = [
    { check: 'tenant secret', status: 'ok', detail: 'exists' },
    { check: 'Klaviyo key', status: 'FAIL', detail: 'refused (401): put a valid key' },
    { check: 'webhook', status: 'skip', detail: 'no URL given' },
  ];

  it('is one aligned line per check, then the verdict', () => {
    expect(formatDoctorReport('acme', results)).toBe(
      [
        'Checks for tenant acme:',
        '  ok    tenant secret  exists',
        '  FAIL  Klaviyo key    refused (401): put a valid key',
        '  skip  webhook        no URL given',
        '1 of 3 checks failed (1 skipped).',
        '',
      ].join('\n'),
    );
  });

  it('says the tenant is ready when nothing failed', () => {
    expect(formatDoctorReport('acme', [results[0] as CheckResult])).toMatch(
      /\nNo check failed: tenant acme is ready\.\n$/,
    );
  });
});

describe('identity-sync doctor', () => {
  it('is a command', async () => {
    const { io, written } = captureIo();
    expect(await identitySync(['doctor', '--help'], io)).toBe(0);
    expect(written.stdout).toMatch(/^Usage: identity-sync doctor/);
  });

  it('needs a tenant when DEFAULT_TENANT is empty (usage error, exit 2)', async () => {
    const { io, written } = captureIo({ DEFAULT_TENANT: '' });
    expect(await identitySync(['doctor'], io)).toBe(2);
    expect(written.stderr).toMatch(/--tenant is required/);
  });
});
