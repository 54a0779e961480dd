import { describe, expect, it } from 'vitest';
import { createMemorySyncState } from '../../lib/adapters/memory-sync-state.js';
import type { AuditEntry } from '../../lib/ports.js';

/** The in-memory store a CLI run uses without SYNC_STATE_TABLE keeps the DynamoDB adapter's rules. */
describe('createMemorySyncState', () => {
  const applied = (occurredAt: string) => ({
    tenant: 'acme',
    externalId: '42',
    occurredAt,
    sourceEventId: `event-${occurredAt}`,
    profileId: '01A',
  });

  it('never moves a customer back to an older change, and clears the pending change on apply', async () => {
    const store = createMemorySyncState();
    expect(await store.getState('acme', '42')).toEqual({});
    expect(await store.recordApplied(applied('2026-06-01T00:00:02Z'))).toBe(true);
    expect(await store.recordApplied(applied('2026-06-01T00:00:01Z'))).toBe(false);
    expect(await store.recordApplied(applied('2026-06-01T00:00:02Z'))).toBe(true);

    const pending = {
      identifiers: { email: 'x@example.com' },
      occurredAt: '2026-06-01T00:00:03Z',
      sourceEventId: 'e3',
    };
    await store.recordPending('acme', '42', pending);
    expect(await store.getState('acme', '42')).toEqual({
      lastAppliedAt: '2026-06-01T00:00:02Z',
      profileId: '01A',
      pending,
    });
    await store.recordApplied(applied('2026-06-01T00:00:03Z'));
    expect(await store.getState('acme', '42')).toEqual({
      lastAppliedAt: '2026-06-01T00:00:03Z',
      profileId: '01A',
    });
    expect(await store.getState('other-tenant', '42')).toEqual({});
  });

  it('gives history newest first, up to the limit', async () => {
    const store = createMemorySyncState();
    const entry = (decidedAt: string): AuditEntry => ({
      tenant: 'acme',
      externalId: '42',
      sourceEventId: 'e',
      outcome: 'applied',
      plan: 'patch',
      profileIds: [],
      occurredAt: decidedAt,
      decidedAt,
    });
    for (const second of ['01', '03', '02']) await store.record(entry(`2026-06-01T00:00:${second}.000Z`));
    const history = await store.history('acme', '42', 2);
    expect(history.map((e) => e.decidedAt)).toEqual(['2026-06-01T00:00:03.000Z', '2026-06-01T00:00:02.000Z']);
  });
});
