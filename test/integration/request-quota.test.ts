import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import {
  createDynamoQuotaLedger,
  createDynamoRequestQuota,
  quotaLedgerKey,
} from '../../lib/adapters/dynamo-request-quota.js';
import { OutOfTimeError } from '../../lib/errors.js';
import { KLAVIYO_PROFILE_LIMITS } from '../../lib/klaviyo/limits.js';
import { createLeasedQuotaGate } from '../../lib/klaviyo/quota-gate.js';
import { compactLeases, MERGED_HOLDER } from '../../lib/klaviyo/quota-lease.js';
import type { QuotaLease, QuotaLedger } from '../../lib/ports.js';
import { useLocalPeers } from '../support/local-peers.js';

/**
 * The shared request quota against dynalite with the real SDK client: the lease ledger's
 * conditional write, and holders (as several Lambda workers would be) contending for one ledger.
 * Real time, small limits, and a deadline so that the runs stay short.
 */
const peers = useLocalPeers();

const ENDPOINT = 'PATCH /api/profiles/{id}';
const ledgerOf = (account: string) =>
  createDynamoQuotaLedger({
    client: peers.dynamodb,
    tableName: peers.env.SYNC_STATE_TABLE as string,
    account,
  });

/** Counts the writes tried (a failed conditional write is still a write). */
function counted(ledger: QuotaLedger) {
  const counts = { writes: 0, refused: 0 };
  return {
    counts,
    ledger: {
      read: ledger.read,
      async write(endpoint, next, expectedVersion) {
        counts.writes++;
        const written = await ledger.write(endpoint, next, expectedVersion);
        if (!written) counts.refused++;
        return written;
      },
    } satisfies QuotaLedger,
  };
}

describe('shared request quota (DynamoDB lease ledger)', () => {
  it('writes a ledger only over the version it was computed from', async () => {
    const ledger = ledgerOf('quota-versions');
    expect(await ledger.read(ENDPOINT)).toEqual({ version: 0, leases: [] });
    const lease = { holder: 'a', from: 1_000, to: 3_000, requests: 10, perSecond: 10 };
    expect(await ledger.write(ENDPOINT, { version: 1, leases: [lease] }, 0)).toBe(true);
    // A second holder that read version 0 too loses the race, and reads the winner's leases.
    expect(await ledger.write(ENDPOINT, { version: 1, leases: [{ ...lease, holder: 'b' }] }, 0)).toBe(false);
    expect(await ledger.read(ENDPOINT)).toEqual({ version: 1, leases: [lease] });
    expect(await ledger.write(ENDPOINT, { version: 2, leases: [] }, 1)).toBe(true);
    expect(await ledger.write(ENDPOINT, { version: 3, leases: [] }, 1)).toBe(false);
  });

  it('stores leases compactly and never smaller: one write unit for a full minute of three busy holders', async () => {
    const ledger = ledgerOf('quota-compact');
    const now = Date.parse('2026-06-01T00:01:05.003Z');
    // A minute at Klaviyo's steady limit: three holders taking blocks of 16, one after another.
    const leases: QuotaLease[] = [];
    for (let at = now - 62_000, i = 0; at < now + 3_000; at += 1_280, i++)
      leases.push({
        holder: `holder-${i % 3}`,
        from: at + 7,
        to: at + 2_007,
        requests: 16,
        perSecond: 27.333,
      });
    const compacted = compactLeases(leases, now, KLAVIYO_PROFILE_LIMITS);
    expect(await ledger.write(ENDPOINT, { version: 1, leases: compacted, contendedWrites: 4 }, 0)).toBe(true);

    const { Item } = await peers.dynamodb.send(
      new GetItemCommand({
        TableName: peers.env.SYNC_STATE_TABLE as string,
        Key: quotaLedgerKey('quota-compact', ENDPOINT),
      }),
    );
    const bytes = Object.entries(Item ?? {}).reduce(
      (sum, [name, value]) => sum + name.length + (value.S?.length ?? value.N?.length ?? 0),
      0,
    );
    expect(bytes).toBeLessThan(1_024);

    const read = await ledger.read(ENDPOINT);
    expect(read.contendedWrites).toBe(4);
    expect(read.leases).toHaveLength(compacted.length);
    for (const [i, stored] of read.leases.entries()) {
      const written = compacted[i] as QuotaLease;
      // Times kept to 10 ms, always outward; rates rounded up; a merged lease keeps its end only.
      expect(stored.holder).toBe(written.holder);
      expect(stored.requests).toBe(written.requests);
      expect(stored.to).toBeGreaterThanOrEqual(written.to);
      expect(stored.to - written.to).toBeLessThan(10);
      expect(stored.perSecond).toBeGreaterThanOrEqual(written.perSecond);
      if (stored.holder !== MERGED_HOLDER) expect(stored.from).toBeLessThanOrEqual(written.from);
    }
  });

  it('shares one quota between two contending holders: within the limits together, the rest out of time', async () => {
    const limits = { perSecond: 20, perMinute: 60 };
    const deadline = Date.now() + 3_000;
    const shared = ledgerOf('quota-contended');
    const holders = ['a', 'b'].map((holder) => {
      const { ledger, counts } = counted(shared);
      return {
        counts,
        sent: [] as number[],
        gate: createLeasedQuotaGate({ ledger, holder, limitsOf: () => limits, deadline: () => deadline }),
      };
    });
    const results = await Promise.allSettled(
      holders.flatMap((holder) =>
        Array.from({ length: 50 }, async () => {
          await holder.gate.wait(ENDPOINT);
          holder.sent.push(Date.now());
        }),
      ),
    );
    const sent = holders.flatMap((holder) => holder.sent).sort((a, b) => a - b);
    // The minute's 60 were shared; no more, whoever took them.
    expect(sent.length).toBeLessThanOrEqual(60);
    expect(sent.length).toBeGreaterThanOrEqual(50);
    for (const [i, at] of sent.entries()) {
      expect(
        sent.filter((other) => other >= at && other < at + 1_000).length,
        `from send ${i}`,
      ).toBeLessThanOrEqual(20);
    }
    const refused = results.filter((result) => result.status === 'rejected');
    expect(refused).toHaveLength(100 - sent.length);
    for (const result of refused)
      expect((result as PromiseRejectedResult).reason).toBeInstanceOf(OutOfTimeError);
    // Blocks of requests per write, both holders writing.
    const writes = holders.reduce((sum, holder) => sum + holder.counts.writes, 0);
    expect(writes).toBeLessThanOrEqual(sent.length / 2);
    expect(holders.every((holder) => holder.counts.writes > 0)).toBe(true);
    // Whoever won each race, the leases on the ledger never promise more than the minute's 60.
    const { leases } = await shared.read(ENDPOINT);
    expect(leases.reduce((sum, lease) => sum + lease.requests, 0)).toBeLessThanOrEqual(60);
  });

  it('keeps tenants apart: one account spending its quota leaves another untouched', async () => {
    const limits = { perSecond: 5, perMinute: 5 };
    const gateOf = (account: string) =>
      createDynamoRequestQuota({
        client: peers.dynamodb,
        tableName: peers.env.SYNC_STATE_TABLE as string,
        account,
        limitsOf: () => limits,
        deadline: () => Date.now() + 500,
      });
    const spend = (account: string) =>
      Promise.allSettled(Array.from({ length: 5 }, () => gateOf(account).wait(ENDPOINT)));
    const first = await spend('tenant-a');
    const second = await spend('tenant-b');
    expect(first.every((result) => result.status === 'fulfilled')).toBe(true);
    expect(second.every((result) => result.status === 'fulfilled')).toBe(true);
    await expect(gateOf('tenant-a').wait(ENDPOINT)).rejects.toBeInstanceOf(OutOfTimeError);
  });
});
