import { limitsOf } from '../../lib/klaviyo/limits.js';
import type { AuditLog } from '../../lib/ports.js';
import type { KlaviyoSandbox, RecordedRequest } from '../../local/klaviyo-sandbox.js';
import { DEMO_TENANT } from '../../scripts/local-stack/demo-tenant.js';
import type { Customer, Workload } from './workload.js';

/**
 * What a fault scenario must end with, measured from the records the service keeps (the audit
 * trail, the dead-letter queue) and from Klaviyo's side (the sandbox's profiles and request log).
 */

/** A change's recorded outcomes: audit decisions (a `parked` one stands for its letter) and dead letters. */
export interface RecordedOutcomes {
  /** Per delivery id, every outcome recorded for it. */
  byChange: Map<string, string[]>;
}

export async function recordedOutcomes(
  audit: AuditLog,
  workload: Workload,
  letters: readonly { sourceEventId?: string; reason?: string }[],
): Promise<RecordedOutcomes> {
  const byChange = new Map<string, string[]>(workload.changeIds.map((id) => [id, []]));
  const record = (id: string | undefined, outcome: string) => {
    if (id !== undefined) byChange.set(id, [...(byChange.get(id) ?? []), outcome]);
  };
  const histories = await Promise.all(
    workload.customers.map((customer) => audit.history(DEMO_TENANT.tenant, customer.externalId)),
  );
  for (const entry of histories.flat())
    if (entry.outcome !== 'parked') record(entry.sourceEventId, entry.outcome);
  for (const letter of letters) record(letter.sourceEventId, `parked:${letter.reason}`);
  return { byChange };
}

export const missingOutcomes = ({ byChange }: RecordedOutcomes) =>
  [...byChange].filter(([, outcomes]) => outcomes.length === 0).map(([id]) => id);

export const repeatedOutcomes = ({ byChange }: RecordedOutcomes) =>
  [...byChange].filter(([, outcomes]) => outcomes.length > 1).map(([id, outcomes]) => `${id}: ${outcomes}`);

/** How many changes ended each way, e.g. `{applied: 20, stale: 9, 'parked:…': 1}`. */
export function outcomeCounts({ byChange }: RecordedOutcomes): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const outcome of [...byChange.values()].flat()) counts[outcome] = (counts[outcome] ?? 0) + 1;
  return counts;
}

/** Customers whose Klaviyo profile is not what their latest change (or their parked one) leaves. */
export function profileMismatches(sandbox: KlaviyoSandbox, customers: readonly Customer[]): string[] {
  const profiles = sandbox.listProfiles();
  return customers.flatMap((customer) => {
    const theirs = profiles.filter((profile) => profile.external_id === customer.externalId);
    if (theirs.length !== 1) return [`${customer.externalId} (${customer.kind}): ${theirs.length} profiles`];
    const [profile] = theirs;
    const { email, phone_number } = customer.expected;
    const same =
      profile?.email?.toLowerCase() === email?.toLowerCase() && profile?.phone_number === phone_number;
    return same
      ? []
      : [
          `${customer.externalId} (${customer.kind}): ${profile?.email} ${profile?.phone_number}, expected ${email} ${phone_number}`,
        ];
  });
}

/** Profiles beyond one per customer: a duplicate created, or an email-only profile left unbound. */
export function duplicateProfiles(sandbox: KlaviyoSandbox, customers: readonly Customer[]): number {
  const ours = new Set(customers.map((customer) => customer.externalId));
  return sandbox.listProfiles().filter((profile) => !profile.external_id || !ours.has(profile.external_id))
    .length;
}

const endpointOf = (request: RecordedRequest) =>
  `${request.method} ${request.path.replace(/^\/api\/profiles\/[^/]+$/, '/api/profiles/{id}')}`;

/** Whether a request reached Klaviyo's counters: not answered by an injected error or reset first. */
const counted = (request: RecordedRequest) =>
  request.fault === undefined || request.fault === 'slow' || request.fault.endsWith('+applied');

export interface EndpointLoad {
  /** Most requests any endpoint took in one second and in one minute (fixed windows, as Klaviyo's). */
  busiestSecond: number;
  busiestMinute: number;
  /** Endpoint windows over Klaviyo's limits. */
  overLimit: string[];
  /** 429s Klaviyo's own limits answered (not injected). */
  throttled: number;
}

export function endpointLoad(requests: readonly RecordedRequest[]): EndpointLoad {
  const windows = new Map<string, number>();
  for (const request of requests.filter(counted)) {
    const endpoint = endpointOf(request);
    for (const [window, ms] of [
      ['s', 1000],
      ['min', 60_000],
    ] as const) {
      const key = `${endpoint} ${window} ${Math.floor(request.receivedAt / ms)}`;
      windows.set(key, (windows.get(key) ?? 0) + 1);
    }
  }
  const load: EndpointLoad = { busiestSecond: 0, busiestMinute: 0, overLimit: [], throttled: 0 };
  for (const [key, count] of windows) {
    const [method, path, window] = key.split(' ');
    const limits = limitsOf(`${method} ${path}`);
    const perSecond = window === 's';
    if (perSecond) load.busiestSecond = Math.max(load.busiestSecond, count);
    else load.busiestMinute = Math.max(load.busiestMinute, count);
    if (count > (perSecond ? limits.perSecond : limits.perMinute)) load.overLimit.push(`${key}: ${count}`);
  }
  load.throttled = requests.filter((request) => request.status === 429 && request.fault === undefined).length;
  return load;
}
