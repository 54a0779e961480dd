import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { OutOfTimeError, TransientError } from '../errors.js';
import type { QuotaLease, QuotaLedger, QuotaLedgerState, RequestGate, SteadyWindowReport } from '../ports.js';
import { countPerWindow, type RateLimit } from './limits.js';
import {
  compactLeases,
  DEFAULT_LEASE_RULES,
  isQuiet,
  type LeaseRules,
  leaseDemand,
  MERGED_HOLDER,
  nextLease,
} from './quota-lease.js';

/**
 * A request gate drawing on an account's quota shared through a ledger (lib/klaviyo/quota-lease.ts
 * for the arithmetic). The holder takes a lease — a block of requests — in one conditional write
 * and spends it locally through a sliding-window pacer at the lease's rate; what it does not
 * spend runs out with the lease, so a crashed holder costs nothing but its last lease. A lease is
 * sized to demand (leaseDemand): the requests waiting now, or a block at the holder's recent pace,
 * so a busy holder takes a block per write, and a trickle a minute of its pace while the ledger is
 * quiet (one request at a time while it is busy).
 *
 * The ledger is read before a write only while another holder may be active in it (one was seen
 * within OTHERS_RETURN_MS): alone, the copy this holder last wrote is the ledger, and a write over
 * it cannot fail; shared, a read (a fifth of a write's price) spares most failed conditional writes.
 *
 * Klaviyo's RateLimit-Remaining/Reset headers are the backstop for what the ledger cannot see
 * (other apps of the merchant spending the same quota): when the steady window is nearly spent,
 * the endpoint is held until Klaviyo's window resets.
 */
export interface LeasedQuotaGateOptions {
  ledger: QuotaLedger;
  /** The limits of an endpoint, keyed like `PATCH /api/profiles/{id}` (already the share we may use). */
  limitsOf: (endpoint: string) => RateLimit;
  /** When waiting must stop (epoch ms on `now`'s clock), e.g. a Lambda invocation's; none: no limit. */
  deadline?: () => number | undefined;
  /** This holder's name on the ledger; by default a random one. */
  holder?: string;
  rules?: LeaseRules;
  now?: () => number;
  pause?: (ms: number) => Promise<unknown>;
}

/**
 * How long another holder seen on the ledger may still write to it: a trickle's holders (Lambda
 * instances taking turns) come back minutes apart, and a write without a read first would fail.
 */
const OTHERS_RETURN_MS = 300_000;

/** How many of `sent` (send times, oldest first: up to a minute of them) are later than `time`. */
function sentAfter(sent: readonly number[], time: number): number {
  let lo = 0;
  let hi = sent.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((sent[mid] as number) > time) hi = mid;
    else lo = mid + 1;
  }
  return sent.length - lo;
}

/** How many times a lease is computed again after another holder wrote first. */
const MAX_LEASE_ATTEMPTS = 8;

interface EndpointState {
  lease?: QuotaLease & { left: number };
  /** This holder's recent send times, oldest first: its burst pacer and its demand. */
  sent: number[];
  waiting: number;
  acquiring?: Promise<void>;
  /** The ledger as this holder last wrote or read it: alone, a write over it needs no read. */
  known?: QuotaLedgerState;
  /** Conditional writes that failed since this holder's last successful one (the ledger keeps the sum). */
  contended: number;
  heldUntil: number;
  /** When this holder last saw another's lease on the ledger, or lost a write to one. */
  sawOthersAt: number;
}

export function createLeasedQuotaGate(options: LeasedQuotaGateOptions): RequestGate {
  const now = options.now ?? Date.now;
  const pause = options.pause ?? sleep;
  const rules = options.rules ?? DEFAULT_LEASE_RULES;
  const holder = options.holder ?? randomUUID().slice(0, 8);
  const endpoints = new Map<string, EndpointState>();

  const stateOf = (endpoint: string): EndpointState => {
    const state = endpoints.get(endpoint) ?? {
      sent: [],
      waiting: 0,
      heldUntil: 0,
      contended: 0,
      sawOthersAt: Number.NEGATIVE_INFINITY,
    };
    endpoints.set(endpoint, state);
    return state;
  };

  async function pauseUntil(time: number) {
    const deadline = options.deadline?.();
    if (deadline !== undefined && time > deadline)
      throw new OutOfTimeError('no Klaviyo quota before the deadline');
    await pause(Math.max(0, time - now()));
  }

  /** The earliest time this holder's own sends let another one go at `perSecond`. */
  function burstOpensAt(state: EndpointState, perSecond: number): number {
    const { count, windowMs } = countPerWindow(perSecond, 1_000);
    const oldestCounted = state.sent[state.sent.length - count];
    return oldestCounted === undefined ? 0 : oldestCounted + windowMs + rules.marginMs;
  }

  function recordSend(state: EndpointState, at: number, limits: RateLimit) {
    state.sent.push(at);
    const keepMs = Math.max(
      rules.paceMs,
      rules.quietLeaseMs,
      countPerWindow(limits.perSecond, 1_000).windowMs + rules.marginMs,
    );
    while ((state.sent[0] ?? at) <= at - keepMs) state.sent.shift();
  }

  async function acquire(endpoint: string, state: EndpointState) {
    // Let the requests asking at the same moment line up first: one lease for them all.
    await new Promise((resolve) => setImmediate(resolve));
    const limits = options.limitsOf(endpoint);
    for (let attempt = 1; attempt <= MAX_LEASE_ATTEMPTS; attempt++) {
      const cached = state.known;
      const alone =
        now() - state.sawOthersAt > OTHERS_RETURN_MS &&
        cached?.leases.every(
          ({ holder: of, to }) => of === holder || of === MERGED_HOLDER || to < now() - rules.paceMs,
        );
      const known = cached && alone ? cached : await options.ledger.read(endpoint);
      if (known.leases.some(({ holder: of }) => of !== holder && of !== MERGED_HOLDER))
        state.sawOthersAt = now();
      const inPlay = compactLeases(known.leases, now(), limits, rules);
      const sentSince = (ms: number) => sentAfter(state.sent, now() - ms);
      // A lease starts when this holder's own recent sends let it spend at the lease's rate.
      const burstMs = countPerWindow(limits.perSecond, 1_000).windowMs + rules.marginMs;
      const demand = {
        waiting: state.waiting,
        sentInPaceWindow: sentSince(rules.paceMs),
        sentInQuietWindow: sentSince(rules.quietLeaseMs),
      };
      // What a quiet ledger would grant (at the rate nextLease gives a demand), if it is quiet enough for it.
      const ahead = leaseDemand({ ...demand, quiet: true }, rules);
      const quiet = isQuiet(
        inPlay,
        { holder, requests: ahead.wanted, perSecond: sentSince(burstMs) + ahead.wanted },
        limits,
        rules,
      );
      const { wanted, spanMs } = quiet ? ahead : leaseDemand(demand, rules);
      const ask = (at: number) =>
        nextLease({
          holder,
          now: at,
          wanted,
          spanMs,
          sentInBurstWindow: sentAfter(state.sent, at - burstMs),
          limits,
          leases: inPlay,
          rules,
        });
      let lease = ask(now());
      for (let settled = 0; settled < 3; settled++) {
        const opens = burstOpensAt(state, lease.perSecond);
        if (opens <= lease.from) break;
        lease = ask(opens);
      }
      const deadline = options.deadline?.();
      if (deadline !== undefined && lease.from > deadline)
        throw new OutOfTimeError('no Klaviyo quota before the deadline');
      const next: QuotaLedgerState = {
        version: known.version + 1,
        leases: [...inPlay, lease],
        contendedWrites: (known.contendedWrites ?? 0) + state.contended,
      };
      if (await options.ledger.write(endpoint, next, known.version)) {
        state.known = next;
        state.contended = 0;
        state.lease = { ...lease, left: lease.requests };
        return;
      }
      state.contended++;
      state.sawOthersAt = now();
      state.known = undefined;
    }
    throw new TransientError(
      'quota_contended',
      `no lease on the Klaviyo quota of ${endpoint} after ${MAX_LEASE_ATTEMPTS} tries`,
    );
  }

  return {
    async wait(endpoint) {
      const state = stateOf(endpoint);
      state.waiting++;
      try {
        for (;;) {
          const at = now();
          if (state.heldUntil > at) {
            await pauseUntil(state.heldUntil);
            continue;
          }
          const lease = state.lease;
          if (lease && lease.left > 0 && at < lease.to) {
            const opens = Math.max(lease.from, burstOpensAt(state, lease.perSecond));
            if (opens <= at) {
              lease.left--;
              recordSend(state, at, options.limitsOf(endpoint));
              return;
            }
            if (opens < lease.to) {
              await pauseUntil(opens);
              continue;
            }
          }
          state.acquiring ??= acquire(endpoint, state).finally(() => {
            state.acquiring = undefined;
          });
          await state.acquiring;
        }
      } finally {
        state.waiting--;
      }
    },

    observe(endpoint, report: SteadyWindowReport) {
      // Nearly spent (less than a 61st of the window left): others may be spending it too.
      if (report.remaining < Math.max(1, Math.floor(options.limitsOf(endpoint).perMinute / 61)))
        stateOf(endpoint).heldUntil = now() + report.resetSeconds * 1000;
    },
  };
}
