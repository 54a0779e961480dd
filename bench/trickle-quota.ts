import { parseArgs } from 'node:util';
import type { AttributeValue, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { createDynamoQuotaLedger } from '../lib/adapters/dynamo-request-quota.js';
import { KLAVIYO_PROFILE_LIMITS } from '../lib/klaviyo/limits.js';
import { createLeasedQuotaGate } from '../lib/klaviyo/quota-gate.js';
import { DEFAULT_LEASE_RULES, type LeaseRules } from '../lib/klaviyo/quota-lease.js';
import type { QuotaLedger } from '../lib/ports.js';
import { startLocalPeers } from '../scripts/local-stack/peers.js';
import { itemBytes, seededRandom } from './measure.js';

/**
 * What the quota's leases cost at a trickle: a month's changes at a steady rate (a million by
 * default, 0.39 a second), store-shaped, through 1 or 2 worker instances (Lambda may alternate
 * them), each a holder of the real leased gate on the real DynamoDB ledger (dynalite). Time is
 * virtual (hours of it in seconds); the ledger, its conditional writes and its items are real.
 * Printed: ledger writes (lost races included), reads and write units per change and per Klaviyo
 * request, and what they cost a million changes, with the rules as deployed and with a quiet
 * ledger's long leases turned off (the rules before them).
 *
 *   npx tsx bench/trickle-quota.ts [--changes-per-month 1000000] [--hours 3] [--holders 1,2]
 */
const { values } = parseArgs({
  options: {
    'changes-per-month': { type: 'string', default: '1000000' },
    hours: { type: 'string', default: '3' },
    holders: { type: 'string', default: '1,2' },
    seed: { type: 'string', default: '7' },
  },
});

const WRITE_UNIT_PRICE = 0.625 / 1e6;
const READ_UNIT_PRICE = 0.125 / 1e6;
const START = Date.parse('2026-06-01T00:00:00.000Z');

/**
 * A change's Klaviyo requests, by the store-shaped mix of bench:throughput (0.74 requests a
 * change there: GET 0.24, PATCH 0.40, POST 0.10): half change no identifier, 30% change a known
 * customer's email, 10% are of a profile Klaviyo knows only by email, 10% new customers.
 */
function requestsOf(draw: number): string[] {
  if (draw < 0.5) return [];
  if (draw < 0.8) return ['PATCH /api/profiles/{id}'];
  if (draw < 0.9) return ['GET /api/profiles', 'PATCH /api/profiles/{id}'];
  if (draw < 0.95) return ['GET /api/profiles', 'POST /api/profile-import'];
  return ['GET /api/profiles', 'POST /api/profile-import', 'GET /api/profiles'];
}

interface Tally {
  changes: number;
  requests: number;
  writes: number;
  lost: number;
  reads: number;
}

async function run(
  peers: Awaited<ReturnType<typeof startLocalPeers>>,
  label: string,
  holders: number,
  rules: LeaseRules,
): Promise<Tally> {
  const perSecond = Number(values['changes-per-month']) / (30 * 86_400);
  const seconds = Number(values.hours) * 3_600;
  const random = seededRandom(Number(values.seed));
  let now = START;
  const clock = () => now;
  const tally: Tally = { changes: 0, requests: 0, writes: 0, lost: 0, reads: 0 };
  // Each run its own account: its own ledger items.
  const real = createDynamoQuotaLedger({
    client: peers.dynamodb,
    tableName: peers.env.SYNC_STATE_TABLE as string,
    account: `trickle-${label}-${holders}`,
    now: clock,
  });
  const ledger: QuotaLedger = {
    async read(endpoint) {
      tally.reads++;
      return real.read(endpoint);
    },
    async write(endpoint, next, expected) {
      const written = await real.write(endpoint, next, expected);
      tally[written ? 'writes' : 'lost']++;
      return written;
    },
  };
  const gates = Array.from({ length: holders }, (_, h) =>
    createLeasedQuotaGate({
      ledger,
      holder: `worker-${h}`,
      limitsOf: () => KLAVIYO_PROFILE_LIMITS,
      now: clock,
      pause: async (ms) => {
        now += Math.max(0, ms);
      },
      rules,
    }),
  );
  for (let at = START; at < START + seconds * 1000; ) {
    at += (-Math.log(1 - random()) / perSecond) * 1000;
    now = Math.max(now, at);
    const gate = gates[Math.floor(random() * holders)] as (typeof gates)[number];
    tally.changes++;
    for (const endpoint of requestsOf(random())) {
      await gate.wait(endpoint);
      tally.requests++;
    }
  }
  return tally;
}

const peers = await startLocalPeers();
// Every ledger write's item (lost races too: a failed conditional write is billed), sized as DynamoDB bills it.
const written: Record<string, AttributeValue>[] = [];
peers.dynamodb.middlewareStack.add(
  (next) => async (args) => {
    const item = (args.input as Partial<PutItemCommand['input']>).Item;
    if (item) written.push(item);
    return next(args);
  },
  { step: 'initialize', name: 'ledgerItemSizes' },
);
try {
  console.log(
    `Trickle: ${Number(values['changes-per-month']).toLocaleString('en')} changes a month ` +
      `(${((Number(values['changes-per-month']) / (30 * 86_400)) * 60).toFixed(1)} a minute), ${values.hours} h of virtual time, ` +
      `Klaviyo's limits ${KLAVIYO_PROFILE_LIMITS.perSecond}/s and ${KLAVIYO_PROFILE_LIMITS.perMinute}/min per endpoint`,
  );
  const variants: [string, LeaseRules][] = [
    ['as deployed (quiet ledger: leases up to a minute)', DEFAULT_LEASE_RULES],
    ['without quiet leases (up to 15 s, as before)', { ...DEFAULT_LEASE_RULES, quietShare: 0 }],
  ];
  for (const holders of (values.holders as string).split(',').map(Number)) {
    for (const [label, rules] of variants) {
      written.length = 0;
      const t = await run(peers, label.split(' ')[0] as string, holders, rules);
      const writeUnits = written.reduce(
        (sum, item) => sum + Math.max(1, Math.ceil(itemBytes(item) / 1024)),
        0,
      );
      const per = (n: number, of: number) => (n / Math.max(1, of)).toFixed(3);
      const dollars = ((writeUnits * WRITE_UNIT_PRICE + t.reads * READ_UNIT_PRICE) / t.changes) * 1e6;
      console.log(
        `  ${holders} holder(s), ${label}: ${t.changes} changes, ${t.requests} Klaviyo requests; ` +
          `${t.writes} writes + ${t.lost} lost, ${t.reads} reads; ` +
          `${per(t.writes + t.lost, t.requests)} writes a request, ${per(writeUnits, t.changes)} write units ` +
          `and ${per(t.reads, t.changes)} reads a change → $${dollars.toFixed(3)} a million changes`,
      );
    }
  }
} finally {
  await peers.stop();
}
