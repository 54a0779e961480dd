import type { QuotaLease } from '../ports.js';
import { countPerWindow, type RateLimit } from './limits.js';

/**
 * The arithmetic of leases on an account's quota (pure: plain data in, plain data out).
 *
 * Klaviyo counts each endpoint in fixed windows of 1 s and 60 s whose phase we do not know, so a
 * lease is granted only if every *sliding* window, widened by `marginMs` (the jitter between our
 * sending and Klaviyo's counting), stays within the limits: then no fixed window can exceed them,
 * wherever it starts. A lease of another holder is widened by `clockSkewMs` on both sides, as its
 * times are read on another clock; a holder's own leases are on its own clock.
 *
 * - Steady window: a lease counts with all its requests in any window its span touches.
 * - Burst window: a holder spends its leases through a local sliding-window pacer at the lease's
 *   `perSecond`, so in any second it sends at most the largest rate of its leases in play then. A
 *   lease is granted only if that, summed over the holders whose leases come within a burst window
 *   of it, stays within the burst limit.
 */
export interface LeaseRules {
  /** How long a lease may be spent from its start, at least; what is left then is lost. */
  leaseMs: number;
  /** How long a lease may last at most: a slow pace gets a longer lease, so still a block of requests. */
  maxLeaseMs: number;
  /**
   * How long a lease may last at most while the ledger is quiet (`quietShare`), and how far back a
   * holder's sends then tell its pace: a trickle takes a minute's worth of its pace in one write.
   * What it leaves unspent is room nobody else was using.
   */
  quietLeaseMs: number;
  /** The ledger is quiet while the leases in play, and a block more, hold at most this share of the steady window. */
  quietShare: number;
  /** How many requests a lease aims at when the pace would spend them within `maxLeaseMs`. */
  blockRequests: number;
  /** How far back a holder's sends tell its pace. */
  paceMs: number;
  /** Leases whose ends fall within one such bucket are merged once only the steady window sees them. */
  mergeBucketMs: number;
  marginMs: number;
  /** The largest difference between the clocks of any two holders. */
  clockSkewMs: number;
}

export const DEFAULT_LEASE_RULES: LeaseRules = {
  leaseMs: 2_000,
  maxLeaseMs: 15_000,
  quietLeaseMs: 60_000,
  quietShare: 0.25,
  blockRequests: 16,
  paceMs: 10_000,
  mergeBucketMs: 2_000,
  marginMs: 100,
  clockSkewMs: 2_000,
};

/** A merged lease's holder: nobody in particular, so every holder widens it by the clock skew. */
export const MERGED_HOLDER = '';

/**
 * How big and how long a lease should be, from the holder's demand: the requests waiting now, or
 * what its recent pace would send in the lease, whichever is more. The lease lasts long enough for
 * the pace to spend a block (`blockRequests`), between `leaseMs` and `maxLeaseMs` (`quietLeaseMs`
 * while the ledger is quiet), so a holder that sends a few requests a second still takes them a
 * block per write. While the ledger is quiet, the pace is also read over `quietLeaseMs`, so a
 * trickle of a request every few seconds takes a minute of them at once; on a busy ledger a
 * trickle too slow to send two within `maxLeaseMs` takes what waits and leaves nothing unspent.
 */
export function leaseDemand(
  demand: { waiting: number; sentInPaceWindow: number; sentInQuietWindow?: number; quiet?: boolean },
  rules: LeaseRules = DEFAULT_LEASE_RULES,
): { wanted: number; spanMs: number } {
  const recentPerMs = demand.sentInPaceWindow / rules.paceMs;
  const perMs = demand.quiet
    ? Math.max(recentPerMs, (demand.sentInQuietWindow ?? 0) / rules.quietLeaseMs)
    : recentPerMs;
  const longestMs = demand.quiet ? rules.quietLeaseMs : rules.maxLeaseMs;
  const spanMs =
    perMs > 0 ? Math.min(longestMs, Math.max(rules.leaseMs, rules.blockRequests / perMs)) : rules.leaseMs;
  const block = Math.min(rules.blockRequests, Math.floor(perMs * spanMs));
  // A fast holder takes half of what its pace sends in the shortest lease, when that is more:
  // fewer writes in a burst, and at most that half left over when the burst ends.
  const halfPace = Math.ceil((recentPerMs * rules.leaseMs) / 2);
  return { wanted: Math.max(1, demand.waiting, block, halfPace), spanMs };
}

/**
 * What holders other than `holder` may send in a second among `leases`: each holder's largest rate
 * (its pacer keeps it to that), summed. A merged lease's rate is 0: it weighs on steady windows only.
 */
function rateOfOthers(leases: readonly QuotaLease[], holder: string): number {
  const rates = new Map<string, number>();
  for (const lease of leases)
    if (lease.holder !== holder)
      rates.set(lease.holder, Math.max(rates.get(lease.holder) ?? 0, lease.perSecond));
  return [...rates.values()].reduce((sum, rate) => sum + rate, 0);
}

/**
 * Whether the ledger is quiet enough for `lease` (what `holder` would take on a quiet ledger: its
 * requests, and the rate it would send them at): with it, the leases in play (every holder's, each
 * counted once however far apart they are) hold at most `quietShare` of the steady window, and the
 * holders' rates in play at most `quietShare` of the burst limit. Then a lease may reserve what a
 * trickle will spend over a minute: nobody else can be short of that room, and a burst of another
 * holder keeps the rest of the burst limit.
 */
export function isQuiet(
  inPlay: readonly QuotaLease[],
  lease: { holder: string; requests: number; perSecond: number },
  limits: RateLimit,
  rules: LeaseRules = DEFAULT_LEASE_RULES,
) {
  const held = inPlay.reduce((sum, { requests }) => sum + requests, 0);
  const othersRate = rateOfOthers(inPlay, lease.holder);
  return (
    held + lease.requests <= windowsOf(limits, rules).steadyCount * rules.quietShare &&
    othersRate + lease.perSecond <= limits.perSecond * rules.quietShare
  );
}

export interface LeaseAsk {
  holder: string;
  /** The holder's clock. */
  now: number;
  /** How many requests the holder would like to send (at least 1). */
  wanted: number;
  /** How long the lease should last (leaseDemand); `rules.leaseMs` if not said. */
  spanMs?: number;
  /** How many the holder sent within the last burst window: its rate must cover them too. */
  sentInBurstWindow?: number;
  limits: RateLimit;
  /** The leases on the ledger, any holder's. */
  leases: readonly QuotaLease[];
  rules?: LeaseRules;
}

/** The windows a limit is counted over, widened by the margin. */
function windowsOf(limits: RateLimit, rules: LeaseRules) {
  const burst = countPerWindow(limits.perSecond, 1_000);
  const steady = countPerWindow(limits.perMinute, 60_000);
  return {
    burstMs: burst.windowMs + rules.marginMs,
    steadyCount: steady.count,
    steadyMs: steady.windowMs + rules.marginMs,
  };
}

/** A lease's span as `holder` must assume it: on another holder's clock, it may be off by the skew. */
function spanSeenBy(lease: QuotaLease, holder: string, rules: LeaseRules): { lo: number; hi: number } {
  const skew = lease.holder === holder ? 0 : rules.clockSkewMs;
  return { lo: lease.from - skew, hi: lease.to + skew };
}

/** The leases that can still weigh on a lease granted at `now` or later: the rest may be dropped. */
function leasesInPlay(
  leases: readonly QuotaLease[],
  now: number,
  limits: RateLimit,
  rules: LeaseRules = DEFAULT_LEASE_RULES,
): QuotaLease[] {
  const { burstMs, steadyMs } = windowsOf(limits, rules);
  // Widened by the skew twice: once as the lease is seen, once as a holder's clock may lag this one.
  const reach = Math.max(burstMs, steadyMs) + 2 * rules.clockSkewMs;
  return leases.filter((lease) => lease.to + reach > now);
}

/**
 * The earliest lease that fits for `ask.holder`, starting at `ask.now` or later (a later start is
 * a booking: the holder waits for it). Partial: it may grant fewer requests than wanted, never 0.
 */
export function nextLease(ask: LeaseAsk): QuotaLease {
  const rules = ask.rules ?? DEFAULT_LEASE_RULES;
  const { burstMs, steadyCount, steadyMs } = windowsOf(ask.limits, rules);
  const spans = ask.leases.map((lease) => ({ lease, ...spanSeenBy(lease, ask.holder, rules) }));
  const wanted = Math.max(1, Math.floor(ask.wanted));
  const leastRate = Math.min(1, ask.limits.perSecond);
  const sentLately = ask.sentInBurstWindow ?? 0;

  const spanMs = ask.spanMs ?? rules.leaseMs;
  const grantAt = (from: number): QuotaLease | undefined => {
    const to = from + spanMs;
    // Steady: the fullest sliding window that touches [from, to]. Its count, a sum of step
    // functions of the window's end x, peaks at the end of some lease's span (or at `to`).
    const touching = spans.filter(({ lo, hi }) => hi > from - steadyMs && lo < to + steadyMs);
    let fullest = 0;
    for (const x of [to, ...touching.map(({ hi }) => hi)]) {
      if (x <= from - steadyMs || x > to) continue;
      let count = 0;
      for (const { lo, hi, lease } of touching) if (lo - steadyMs < x && x <= hi) count += lease.requests;
      fullest = Math.max(fullest, count);
    }
    const steadyRoom = steadyCount - fullest;
    // Burst: other holders' largest rates in play within a burst window of [from, to].
    const near = spans
      .filter(({ lo, hi }) => hi > from - burstMs && lo < to + burstMs)
      .map(({ lease }) => lease);
    const rateRoom = ask.limits.perSecond - rateOfOthers(near, ask.holder);
    if (steadyRoom < 1 || rateRoom < leastRate - 1e-9) return undefined;
    // Sent at once when few are wanted (on top of the holder's sends still in its burst window:
    // its pacer counts them); a big demand takes the whole free rate.
    const perSecond = Math.min(rateRoom, Math.max(leastRate, sentLately + wanted));
    // Sent from `from` on: a full burst window of them every window until `to`.
    const pace = countPerWindow(perSecond, 1_000);
    const windows = Math.ceil(spanMs / (pace.windowMs + rules.marginMs));
    const spendable = Math.max(1, pace.count * windows - sentLately);
    return { holder: ask.holder, from, to, requests: Math.min(wanted, steadyRoom, spendable), perSecond };
  };

  // The room grows only when a lease leaves a window: try now, then each such moment in turn.
  const moments = spans
    .flatMap(({ hi }) => [hi + burstMs, hi + steadyMs])
    .filter((moment) => moment > ask.now)
    .sort((a, b) => a - b);
  for (const from of [ask.now, ...moments]) {
    const lease = grantAt(from);
    if (lease) return lease;
  }
  throw new Error('unreachable: with every lease out of its windows, a lease always fits');
}

/**
 * The leases in play, merged a bucket of ends at a time so the ledger stays small (one DynamoDB
 * write unit) however many leases a minute holds. A merged lease spans its parts, carries the sum
 * of their requests and the largest of their rates, so it counts at least as much as its parts in
 * every window, and frees its room at most a bucket later:
 * - a holder's own leases are merged with each other (its rate in any second is at most the
 *   largest of them, as its pacer keeps it);
 * - leases past every holder's burst window (their end, widened by the skew on both clocks, more
 *   than a burst window ago) weigh only on steady windows, where only their end and count matter
 *   (every window a new lease can touch starts after their start): those of all holders are
 *   merged into one lease of nobody in particular (MERGED_HOLDER), whose start is not kept.
 */
export function compactLeases(
  leases: readonly QuotaLease[],
  now: number,
  limits: RateLimit,
  rules: LeaseRules = DEFAULT_LEASE_RULES,
): QuotaLease[] {
  const { burstMs } = windowsOf(limits, rules);
  const steadyOnlyBefore = now - burstMs - 2 * rules.clockSkewMs;
  const merged = new Map<string, QuotaLease>();
  for (const lease of leasesInPlay(leases, now, limits, rules)) {
    const steadyOnly = lease.to < steadyOnlyBefore;
    const holder = steadyOnly ? MERGED_HOLDER : lease.holder;
    const key = `${holder}@${Math.floor(lease.to / rules.mergeBucketMs)}`;
    const into = merged.get(key);
    merged.set(key, {
      holder,
      from: steadyOnly ? lease.to : Math.min(into?.from ?? lease.from, lease.from),
      to: Math.max(into?.to ?? lease.to, lease.to),
      requests: (into?.requests ?? 0) + lease.requests,
      perSecond: steadyOnly ? 0 : Math.max(into?.perSecond ?? 0, lease.perSecond),
    });
  }
  return [...merged.values()].sort((a, b) => a.to - b.to);
}
