import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BULK_IMPORT_ENDPOINTS, bulkImportBody, profileIndexOf } from '../../lib/klaviyo/bulk-import.js';
import { createKlaviyoClient } from '../../lib/klaviyo/client.js';
import { createKlaviyoPacer } from '../../lib/klaviyo/pacer.js';
import { type KlaviyoSandbox, SANDBOX_API_KEY, startKlaviyoSandbox } from '../../local/klaviyo-sandbox.js';

/** The bulk import jobs in the Klaviyo client: bodies, pointers, and the rate-limit keys it paces by. */
describe('bulk import jobs in the client', () => {
  let sandbox: KlaviyoSandbox;
  beforeAll(async () => {
    sandbox = await startKlaviyoSandbox({ bulkImportDelayMs: Number.POSITIVE_INFINITY });
  });
  afterAll(() => sandbox?.stop());

  it('starts a job, reads it and its import errors, each paced under its own endpoint', async () => {
    const paced: string[] = [];
    const client = createKlaviyoClient({
      baseUrl: sandbox.url,
      apiKey: SANDBOX_API_KEY,
      revision: '2026-07-15',
      timeoutMs: 5_000,
      pacer: { wait: async (endpoint) => void paced.push(endpoint) },
    });
    const started = await client.startBulkImport([
      { attributes: { external_id: 'unit-1', email: 'unit.one@example.com' } },
      { attributes: { external_id: 'unit-2', email: 'not-an-email' } },
    ]);
    expect(started).toMatchObject({ status: 'queued', total: 2, completed: 0, failed: 0 });
    sandbox.settleBulkImports();

    expect(await client.getBulkImport(started.id)).toEqual({
      id: started.id,
      status: 'complete',
      total: 2,
      completed: 1,
      failed: 1,
    });
    expect(await client.bulkImportErrors(started.id)).toEqual({
      errors: [
        {
          code: 'invalid',
          detail: 'Invalid email address.',
          pointer: '/data/attributes/profiles/data/1/attributes/email',
          originalPayload: { type: 'profile', attributes: { external_id: 'unit-2', email: 'not-an-email' } },
        },
      ],
    });
    expect(paced).toEqual(BULK_IMPORT_ENDPOINTS);
  });

  it('names the profile an error points at, and leaves out an id the profile has not', () => {
    expect(profileIndexOf('/data/attributes/profiles/data/12/attributes/email')).toBe(12);
    expect(profileIndexOf('/data/attributes/profiles/data/3')).toBe(3);
    expect(profileIndexOf('/data/attributes/profiles')).toBeUndefined();
    expect(profileIndexOf(undefined)).toBeUndefined();
    expect(
      bulkImportBody([{ attributes: { external_id: '1' } }, { id: '01P', attributes: {} }]).data.attributes,
    ).toEqual({
      profiles: {
        data: [
          { type: 'profile', attributes: { external_id: '1' } },
          { type: 'profile', id: '01P', attributes: {} },
        ],
      },
    });
  });

  it("is paced at Klaviyo's bulk limits, 10 a second, whatever the run's own rate", () => {
    let now = 0;
    for (const rate of [undefined, 60]) {
      const pacer = createKlaviyoPacer(rate, { now: () => now });
      const slots = Array.from({ length: 11 }, () => pacer.reserve('POST /api/profile-bulk-import-jobs'));
      expect(slots.slice(0, 10).every((at) => at === now)).toBe(true);
      expect(slots[10]).toBeGreaterThanOrEqual(now + 1_000);
      now += 100_000;
    }
  });
});
