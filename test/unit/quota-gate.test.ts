import { setImmediate as turn } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { OutOfTimeError } from '../../lib/errors.js';
import { KLAVIYO_PROFILE_LIMITS, type RateLimit, shareOf } from '../../lib/klaviyo/limits.js';
import { createLeasedQuotaGate } from '../../lib/klaviyo/quota-gate.js';
import {
  compactLeases,
  DEFAULT_LEASE_RULES,
  type LeaseRules,
  leaseDemand,
  MERGED_HOLDER,
} from '../../lib/klaviyo/quota-lease.js';
import type { QuotaLease, QuotaLedger, QuotaLedgerState, RequestGate } from '../../lib/ports.js';

/**
 * The leased quota on a virtual clock: holders share an in-memory ledger, every pause is a timer
 * the test fires in time order, and each request's true send time is recorded, to be checked
 * against Klaviyo's windows at every phase (a sliding window: the worst any fixed one could see).
 */
const START = Date.parse('2026-06-01T00:00:00.000Z');
const ENDPOINT = 'PATCH /api/profiles/{id}';

function virtualTime() {
  let now = START;
  const timers: { at: number; resolve: () => void }[] = [];
  return {
    now: () => now,
    pause: (ms: number) =>
      new Promise<void>((resolve) => {
        timers.push({ at: now + Math.max(0, ms), resolve });
      }),
    /** Runs until every promise of `work` settles, firing the timers in time order. */
    async run<T>(work: Promise<T>[]): Promise<PromiseSettledResult<T>[]> {
      let settled = false;
      const all = Promise.allSettled(work).then((results) => {
        settled = true;
        return results;
      });
      for (;;) {
        // Let everything not waiting for a timer run first (a lease waits a turn for company).
        for (let i = 0; i < 5 || (timers.length === 0 && !settled && i < 1_000); i++) await turn();
        if (settled) return all;
        timers.sort((a, b) => a.at - b.at);
        const next = timers.shift();
        if (!next) throw new Error('stuck: nothing to wait for');
        now = Math.max(now, next.at);
        next.resolve();
      }
    },
  };
}

function memoryLedger() {
  let state: QuotaLedgerState = { version: 0, leases: [] };
  const counts = { reads: 0, writes: 0 };
  const ledger: QuotaLedger = {
    async read() {
      counts.reads++;
      return structuredClone(state);
    },
    async write(_endpoint, next, expectedVersion) {
      counts.writes++;
      if (state.version !== expectedVersion) return false;
      state = structuredClone(next);
      return true;
    },
  };
  return {
    ledger,
    counts,
    leases: () => state.leases,
    /** Writes that succeeded (each bumps the version); `counts.writes` has the failed ones too. */
    version: () => state.version,
    add: (lease: QuotaLease) => {
      state = { version: state.version + 1, leases: [...state.leases, lease] };
    },
  };
}

/** The most of `times` in any window of `windowMs`, wherever it starts. */
function worstWindow(times: number[], windowMs: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let most = 0;
  for (let first = 0, last = 0; last < sorted.length; last++) {
    while ((sorted[last] as number) - (sorted[first] as number) >= windowMs) first++;
    most = Math.max(most, last - first + 1);
  }
  return most;
}

interface Holder {
  gate: RequestGate;
  /** True send times. */
  sent: number[];
}

function holderOf(
  time: ReturnType<typeof virtualTime>,
  ledger: QuotaLedger,
  options: {
    name: string;
    clockOffsetMs?: number;
    limits?: RateLimit;
    deadline?: () => number | undefined;
    rules?: LeaseRules;
  },
): Holder {
  const offset = options.clockOffsetMs ?? 0;
  return {
    gate: createLeasedQuotaGate({
      ledger,
      holder: options.name,
      limitsOf: () => options.limits ?? KLAVIYO_PROFILE_LIMITS,
      now: () => time.now() + offset,
      pause: time.pause,
      deadline: options.deadline,
      rules: options.rules,
    }),
    sent: [],
  };
}

/** `count` requests through `holder`, all asking at `atMs` after the start; each records its true send time. */
function burst(
  time: ReturnType<typeof virtualTime>,
  holder: Holder,
  count: number,
  atMs = 0,
): Promise<void>[] {
  return Array.from({ length: count }, async () => {
    if (atMs > 0) await time.pause(START + atMs - time.now());
    await holder.gate.wait(ENDPOINT);
    holder.sent.push(time.now());
  });
}

const expectWithinKlaviyosWindows = (sent: number[], limits: RateLimit = KLAVIYO_PROFILE_LIMITS) => {
  expect(worstWindow(sent, 1_000)).toBeLessThanOrEqual(limits.perSecond);
  expect(worstWindow(sent, 60_000)).toBeLessThanOrEqual(limits.perMinute);
};

describe('leased quota gate', () => {
  it('sends a burst at the burst limit, and two bursts 20 s apart within both windows', async () => {
    const time = virtualTime();
    const { ledger, counts } = memoryLedger();
    const holder = holderOf(time, ledger, { name: 'worker' });
    await time.run([...burst(time, holder, 500), ...burst(time, holder, 500, 20_000)]);

    expect(holder.sent).toHaveLength(1_000);
    expectWithinKlaviyosWindows(holder.sent);
    const first = holder.sent.slice(0, 500);
    // 500 at 75 in any 1.1 s: under 8 s, where 12 a second took 40.
    expect(Math.max(...first) - START).toBeLessThan(8_000);
    // The second burst fills the minute (750, less what the first's last lease left over) at once;
    // the rest waits for the first to slide out of the window.
    expect(holder.sent.filter((at) => at < START + 30_000).length).toBeGreaterThanOrEqual(700);
    expect(Math.min(...holder.sent.slice(750))).toBeGreaterThan(START + 60_000);
    // Blocks, not one write per request.
    expect(counts.writes / holder.sent.length).toBeLessThanOrEqual(0.1);
  });

  it.each([
    [+1_000, -1_000],
    [+2_000, 0],
    [0, +2_000],
  ])('keeps two writers whose clocks are %i and %i ms off within both windows', async (offsetA, offsetB) => {
    const time = virtualTime();
    const { ledger } = memoryLedger();
    const a = holderOf(time, ledger, { name: 'a', clockOffsetMs: offsetA });
    const b = holderOf(time, ledger, { name: 'b', clockOffsetMs: offsetB });
    await time.run([
      ...burst(time, a, 400),
      ...burst(time, b, 400),
      ...burst(time, a, 300, 20_000),
      ...burst(time, b, 300, 20_500),
      ...burst(time, a, 200, 61_000),
    ]);
    const all = [...a.sent, ...b.sent];
    expect(all).toHaveLength(1_600);
    expectWithinKlaviyosWindows(all);
  });

  it('would exceed the windows with skewed clocks if it did not allow for the skew', async () => {
    // The check above can fail: the same traffic, told the clocks agree.
    const time = virtualTime();
    const { ledger } = memoryLedger();
    const rules = { ...DEFAULT_LEASE_RULES, clockSkewMs: 0 };
    const a = holderOf(time, ledger, { name: 'a', clockOffsetMs: -4_000, rules });
    const b = holderOf(time, ledger, { name: 'b', clockOffsetMs: 0, rules });
    await time.run([...burst(time, a, 750), ...burst(time, b, 300, 50_000)]);
    expect(worstWindow([...a.sent, ...b.sent], 60_000)).toBeGreaterThan(750);
  });

  it('sizes leases to demand: a trickle on a busy ledger takes one request per lease and leaves the rest to others', async () => {
    const time = virtualTime();
    const memory = memoryLedger();
    // Another holder's lease keeps 300 of the minute in play: more than a quarter of 750.
    memory.add({ holder: 'busy', from: START, to: START + 60_000, requests: 300, perSecond: 5 });
    const holder = holderOf(time, memory.ledger, { name: 'trickle' });
    await time.run(Array.from({ length: 5 }, (_, i) => burst(time, holder, 1, i * 10_000)).flat());
    expect(memory.counts.writes).toBe(5);
    const own = memory.leases().filter((lease) => lease.holder !== 'busy');
    expect(own.map((lease) => lease.requests)).toEqual([1, 1, 1, 1, 1]);
  });

  it('takes a minute of a trickle in one write while the ledger is quiet, and leaves at most a block of it', async () => {
    const time = virtualTime();
    const memory = memoryLedger();
    const holder = holderOf(time, memory.ledger, { name: 'trickle' });
    // A request every 10 s for 10 minutes: 0.1 a second, 6 a minute.
    await time.run(Array.from({ length: 60 }, (_, i) => burst(time, holder, 1, i * 10_000)).flat());
    expect(holder.sent).toHaveLength(60);
    // Each request sent as it asked: a lease is never waited for.
    expect(holder.sent.every((at, i) => at === START + i * 10_000)).toBe(true);
    // A write per 5 requests or so (the minute's pace, less the one just leaving it), where a busy
    // ledger takes one per request.
    expect(memory.counts.writes).toBeLessThanOrEqual(15);
    const leases = memory.leases().filter((lease) => lease.holder === 'trickle');
    expect(Math.max(...leases.map((lease) => lease.requests))).toBeLessThanOrEqual(
      DEFAULT_LEASE_RULES.blockRequests,
    );
    expect(Math.max(...leases.map((lease) => lease.to - lease.from))).toBeLessThanOrEqual(
      DEFAULT_LEASE_RULES.quietLeaseMs,
    );
  });

  it('does not hold back requests that come one after another', async () => {
    const time = virtualTime();
    const { ledger } = memoryLedger();
    const holder = holderOf(time, ledger, { name: 'cli' });
    const oneByOne = (async () => {
      for (let i = 0; i < 30; i++) await burst(time, holder, 1)[0];
    })();
    await time.run([oneByOne]);
    expect(holder.sent).toHaveLength(30);
    expect(time.now()).toBe(START);
  });

  it('lets a lease expire unused: what was not sent by its end is never sent', async () => {
    const time = virtualTime();
    const memory = memoryLedger();
    const holder = holderOf(time, memory.ledger, { name: 'worker' });
    // 100 requests within a lease's length: the next lease is sized to that demand...
    await time.run(burst(time, holder, 100));
    await time.run(burst(time, holder, 1, 1_000));
    const big = memory.leases().at(-1) as QuotaLease;
    expect(big.requests).toBeGreaterThan(1);
    // ...and after its end, a request takes a new lease rather than the leftover.
    const writes = memory.counts.writes;
    await time.run(burst(time, holder, 1, big.to - START + 1));
    expect(memory.counts.writes).toBe(writes + 1);
    expect((memory.leases().at(-1) as QuotaLease).from).toBeGreaterThanOrEqual(big.to);
  });

  it("counts a crashed holder's lease until it leaves the window, then frees it", async () => {
    const time = virtualTime();
    const memory = memoryLedger();
    memory.add({ holder: 'crashed', from: START, to: START + 2_000, requests: 700, perSecond: 75 });
    const holder = holderOf(time, memory.ledger, { name: 'survivor' });
    await time.run(burst(time, holder, 100));
    expect(holder.sent.filter((at) => at < START + 60_000)).toHaveLength(50);
    // Freed once the crashed lease (with the other clock's skew) has left every 60 s window.
    const freed = START + 2_000 + DEFAULT_LEASE_RULES.clockSkewMs + 60_000;
    expect(Math.min(...holder.sent.slice(50))).toBeGreaterThanOrEqual(freed);
    expect(Math.max(...holder.sent) - freed).toBeLessThan(2_000);
  });

  it('honours a fractional rate (10.5/s, 630/min)', async () => {
    const time = virtualTime();
    const limits = { perSecond: 10.5, perMinute: 630 };
    const { ledger } = memoryLedger();
    const holder = holderOf(time, ledger, { name: 'cli', limits });
    await time.run(burst(time, holder, 700));
    expectWithinKlaviyosWindows(holder.sent, limits);
    expect(holder.sent.filter((at) => at < START + 60_000).length).toBeGreaterThan(500);
  });

  it('honours a share below one request a second instead of rounding it up', async () => {
    const time = virtualTime();
    const limits = shareOf(KLAVIYO_PROFILE_LIMITS, 0.01); // 0.75/s, 7.5/min
    const { ledger } = memoryLedger();
    const holder = holderOf(time, ledger, { name: 'small', limits });
    await time.run(burst(time, holder, 20));
    expect(worstWindow(holder.sent, 60_000)).toBeLessThanOrEqual(7);
    expect(worstWindow(holder.sent, 1_000)).toBe(1);
  });

  it('gives up with an out-of-time error, without writing, when quota cannot come before the deadline', async () => {
    const time = virtualTime();
    const memory = memoryLedger();
    const deadline = START + 15_000;
    const holder = holderOf(time, memory.ledger, { name: 'lambda', deadline: () => deadline });
    const results = await time.run(burst(time, holder, 800));
    expect(holder.sent).toHaveLength(750);
    const refused = results.filter((result) => result.status === 'rejected');
    expect(refused).toHaveLength(50);
    expect((refused[0] as PromiseRejectedResult).reason).toBeInstanceOf(OutOfTimeError);
    expect((refused[0] as PromiseRejectedResult).reason.reason).toBe('out_of_time');
    expect(time.now()).toBeLessThanOrEqual(deadline);
    expect(memory.leases().every((lease) => lease.from <= deadline)).toBe(true);
  });

  it("holds an endpoint until Klaviyo's window resets when its headers say it is nearly spent", async () => {
    const time = virtualTime();
    const { ledger } = memoryLedger();
    const holder = holderOf(time, ledger, { name: 'worker' });
    holder.gate.observe?.(ENDPOINT, { remaining: 3, resetSeconds: 20 });
    await time.run(burst(time, holder, 1));
    expect(holder.sent[0]).toBe(START + 20_000);
  });

  it('takes a block a write from holders at a few requests a second: three of them, failed writes counted', async () => {
    const time = virtualTime();
    const memory = memoryLedger();
    const holders = ['a', 'b', 'c'].map((name) => holderOf(time, memory.ledger, { name }));
    // Each holder 3.3 requests a second for a minute: 10 a second together, under the steady 12.5.
    const work = holders.flatMap((holder, h) =>
      Array.from({ length: 200 }, (_, i) => burst(time, holder, 1, h * 97 + i * 300)).flat(),
    );
    await time.run(work);
    const all = holders.flatMap((holder) => holder.sent);
    expect(all).toHaveLength(600);
    expectWithinKlaviyosWindows(all);
    // Every write tried, the ones that lost a race included.
    expect(memory.counts.writes / all.length).toBeLessThanOrEqual(0.1);
    // Nothing waited long for its lease: at most a second.
    const asked = holders.flatMap((_, h) => Array.from({ length: 200 }, (_, i) => START + h * 97 + i * 300));
    const sent = holders.flatMap((holder) => holder.sent);
    expect(Math.max(...sent.map((at, i) => at - (asked[i] as number)))).toBeLessThanOrEqual(1_000);
  });

  it('reads the ledger only when another holder is active in it', async () => {
    const time = virtualTime();
    const memory = memoryLedger();
    const alone = holderOf(time, memory.ledger, { name: 'alone' });
    await time.run(Array.from({ length: 20 }, (_, i) => burst(time, alone, 5, i * 3_000)).flat());
    // Its first lease reads the empty ledger; after that, its own copy is the ledger.
    expect(memory.counts.reads).toBe(1);
    const other = holderOf(time, memory.ledger, { name: 'other' });
    await time.run(burst(time, other, 5, 61_000));
    const reads = memory.counts.reads;
    // More than what is left of its last lease (a block at most): a new lease, read first.
    await time.run(burst(time, alone, DEFAULT_LEASE_RULES.blockRequests + 1, 62_000));
    expect(memory.counts.reads).toBe(reads + 1);
  });

  it("leaves another holder's burst three quarters of the burst limit however many trickles reserve ahead", async () => {
    const time = virtualTime();
    const memory = memoryLedger();
    // Every lease as granted (the ledger merges old ones away).
    const granted: QuotaLease[] = [];
    const ledger: QuotaLedger = {
      read: memory.ledger.read,
      async write(endpoint, next, expected) {
        const written = await memory.ledger.write(endpoint, next, expected);
        if (written) granted.push(next.leases.at(-1) as QuotaLease);
        return written;
      },
    };
    const trickles = ['t1', 't2', 't3'].map((name) => holderOf(time, ledger, { name }));
    const burster = holderOf(time, ledger, { name: 'burst' });
    // Three trickles of a request every 3.5 s each for two minutes, then 500 at once from another holder.
    const trickling = trickles.flatMap((holder, h) =>
      Array.from({ length: 35 }, (_, i) => burst(time, holder, 1, h * 1_100 + i * 3_500)).flat(),
    );
    await time.run([...trickling, ...burst(time, burster, 500, 65_000)]);
    expectWithinKlaviyosWindows([...burster.sent, ...trickles.flatMap((holder) => holder.sent)]);
    // Trickles reserved ahead, but never more than a quarter of the burst limit at once between them.
    const long = granted.filter((lease) => lease.to - lease.from > DEFAULT_LEASE_RULES.maxLeaseMs);
    expect(long.length).toBeGreaterThan(0);
    for (const { from } of long) {
      const reserved = long.filter((lease) => lease.from <= from && from < lease.to);
      expect(reserved.reduce((sum, lease) => sum + lease.perSecond, 0)).toBeLessThanOrEqual(
        KLAVIYO_PROFILE_LIMITS.perSecond * DEFAULT_LEASE_RULES.quietShare,
      );
    }
    // Had each trickle reserved ahead, their rates would have held the burst to 39 a second (13 s).
    expect(Math.max(...burster.sent) - (START + 65_000)).toBeLessThan(9_000);
  });

  it('reads first for minutes after it saw another holder: instances taking turns at a trickle lose no writes', async () => {
    const time = virtualTime();
    const memory = memoryLedger();
    const a = holderOf(time, memory.ledger, { name: 'a' });
    const b = holderOf(time, memory.ledger, { name: 'b' });
    // A request every 20 s, the two instances taking turns a minute at a time, for 10 minutes.
    await time.run(
      Array.from({ length: 30 }, (_, i) => burst(time, Math.floor(i / 3) % 2 ? b : a, 1, i * 20_000)).flat(),
    );
    expect([...a.sent, ...b.sent]).toHaveLength(30);
    // Only a's first return, before it had seen b, writes blind and loses.
    expect(memory.counts.writes - memory.version()).toBeLessThanOrEqual(1);
  });
});

describe('lease sizing', () => {
  const rules = DEFAULT_LEASE_RULES;
  it.each([
    // [waiting, sent in the pace window, wanted, span]
    [1, 0, 1, rules.leaseMs], // a first request
    [1, 1, 1, rules.maxLeaseMs], // a trickle on a busy ledger: what waits, nothing left over
    [1, 40, 16, 4_000], // 4 a second: a block over 4 s
    [1, 750, 75, rules.leaseMs], // 75 a second: half what that pace sends in the shortest lease
    [40, 200, 40, rules.leaseMs], // 20 a second, more waiting than a block: all of them
    [100, 750, 100, rules.leaseMs], // more waiting than half the pace: all of them
    [1, 12, 16, 13_333.333333333334], // 1.2 a second: a block over 13.3 s
  ])('waiting %i, %i sent lately: %i requests over %i ms', (waiting, sentInPaceWindow, wanted, spanMs) => {
    expect(leaseDemand({ waiting, sentInPaceWindow }, rules)).toEqual({ wanted, spanMs });
  });

  it.each([
    // [sent in the pace window, sent in the quiet window, wanted, span]
    [1, 9, 9, rules.quietLeaseMs], // 0.15 a second: the minute's 9 in one lease
    [0, 2, 2, rules.quietLeaseMs], // a request every 30 s: two
    [0, 40, 16, 24_000], // 0.67 a second: a block over 24 s
    [12, 12, 16, 13_333.333333333334], // 1.2 a second: as on a busy ledger
  ])(
    'quiet ledger, %i sent lately, %i in the last minute: %i requests over %i ms',
    (sentInPaceWindow, sentInQuietWindow, wanted, spanMs) => {
      expect(leaseDemand({ waiting: 1, sentInPaceWindow, sentInQuietWindow, quiet: true }, rules)).toEqual({
        wanted,
        spanMs,
      });
    },
  );
});

describe('compacted leases', () => {
  /** Random leases around `now` of a few holders, with the random generator seeded. */
  function randomLeases(seed: number, now: number): QuotaLease[] {
    let state = seed;
    const random = () => {
      state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
      return state / 2 ** 31;
    };
    return Array.from({ length: 120 }, () => {
      const from = now - 70_000 + Math.floor(random() * 80_000);
      return {
        holder: `h${Math.floor(random() * 3)}`,
        from,
        to: from + 2_000 + Math.floor(random() * 13_000),
        requests: 1 + Math.floor(random() * 20),
        perSecond: 1 + Math.floor(random() * 30),
      };
    });
  }

  /** What `viewer` counts of `leases` in the window starting at `x` (steady), or their rates (burst). */
  function seen(leases: QuotaLease[], viewer: string, x: number, windowMs: number) {
    const skew = (lease: QuotaLease) => (lease.holder === viewer ? 0 : DEFAULT_LEASE_RULES.clockSkewMs);
    const touching = leases.filter(
      (lease) => lease.from - skew(lease) < x + windowMs && lease.to + skew(lease) >= x,
    );
    const rates = new Map<string, number>();
    for (const lease of touching)
      if (lease.holder !== viewer)
        rates.set(lease.holder, Math.max(rates.get(lease.holder) ?? 0, lease.perSecond));
    return {
      requests: touching.reduce((sum, lease) => sum + lease.requests, 0),
      othersRate: [...rates.values()].reduce((sum, rate) => sum + rate, 0),
    };
  }

  it.each([1, 2, 3, 4, 5])(
    'never count less in a window a new lease can touch, nor show a smaller rate (seed %i)',
    (seed) => {
      const now = START;
      const leases = randomLeases(seed, now);
      const compacted = compactLeases(leases, now, KLAVIYO_PROFILE_LIMITS);
      expect(compacted.length).toBeLessThan(leases.length / 2);
      expect(compacted.some((lease) => lease.holder === MERGED_HOLDER)).toBe(true);
      const steadyMs = 60_000 + DEFAULT_LEASE_RULES.marginMs;
      const burstMs = 1_000 + DEFAULT_LEASE_RULES.marginMs;
      // Viewers on clocks up to the skew behind: a new lease starts at their now or later.
      for (const viewer of ['h0', 'h1', 'stranger']) {
        for (let x = now - DEFAULT_LEASE_RULES.clockSkewMs - steadyMs; x < now + 20_000; x += 37) {
          expect(seen(compacted, viewer, x, steadyMs).requests).toBeGreaterThanOrEqual(
            seen(leases, viewer, x, steadyMs).requests,
          );
        }
        for (let x = now - DEFAULT_LEASE_RULES.clockSkewMs - burstMs; x < now + 20_000; x += 37) {
          expect(seen(compacted, viewer, x, burstMs).othersRate).toBeGreaterThanOrEqual(
            seen(leases, viewer, x, burstMs).othersRate,
          );
        }
      }
    },
  );
});
