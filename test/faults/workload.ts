import { signErpRequest } from '../../lib/erp/sign.js';
import { customerPayload, shopifyHeaders } from '../../local/shopify-deliveries.js';
import { DEMO_TENANT } from '../../scripts/local-stack/demo-tenant.js';

/**
 * The mixed traffic every fault scenario sends: customers whose profile exists (updates), new
 * ones (creates), email-only profiles to bind, two customers trading emails and one wanting
 * another's email (conflicts), a quarter of the deliveries sent three times (duplicates), each
 * customer's deliveries in a shuffled order. Seeded, so a scenario is the same on every run.
 */
export type CustomerKind = 'update' | 'create' | 'bind' | 'swap' | 'held';

export interface Identity {
  email: string | null;
  phone_number: string | null;
}

export interface Customer {
  externalId: string;
  kind: CustomerKind;
  source: 'shopify' | 'erp';
  /** Its profile before the scenario (bind: the email-only profile, without external_id). */
  seed?: Identity & { external_id: string | null };
  /** Its profile after the scenario. */
  expected: Identity;
  /** A change that must end parked with this reason instead of applied. */
  parkedReason?: string;
}

export interface Delivery {
  customer: Customer;
  /** The delivery id: the queue's deduplication id and the change's sourceEventId. */
  id: string;
  /** Signs the delivery afresh (the ERP's timestamps are checked), as a sender's retry does. */
  request(): { body: string; headers: Record<string, string>; erpTenant?: string };
}

export interface Workload {
  customers: Customer[];
  /** Every delivery in sending order, duplicates included. */
  deliveries: Delivery[];
  /** The distinct delivery ids: each must end with exactly one recorded outcome. */
  changeIds: string[];
}

const TENANT = DEMO_TENANT.tenant;
const FIRST_CHANGE = Date.parse('2026-05-01T00:00:00Z');

/** A small seeded generator (mulberry32): the same workload on every run. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

function shuffle<T>(items: T[], random: () => number): T[] {
  const shuffled = [...items];
  for (let i = shuffled.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [shuffled[i], shuffled[j]] = [shuffled[j] as T, shuffled[i] as T];
  }
  return shuffled;
}

const phone = (customer: number, change: number) =>
  `+1212${String(200 + (customer % 800)).padStart(3, '0')}${String(1000 + change).slice(-4)}`;

interface ChangeSpec {
  email?: string | null;
  phoneNumber?: string | null;
  previous?: { email: string };
}

/** The delivery of one change, by its customer's source. */
function deliveryOf(customer: Customer, id: string, change: ChangeSpec, occurredAt: string): Delivery {
  if (customer.source === 'shopify') {
    const body = customerPayload({
      id: customer.externalId,
      email: change.email ?? null,
      phone: change.phoneNumber ?? null,
      updatedAt: occurredAt,
    });
    const headers = shopifyHeaders(body, { secret: DEMO_TENANT.shopifyWebhookSecret, webhookId: id });
    return { customer, id, request: () => ({ body, headers }) };
  }
  const body = JSON.stringify({ externalId: customer.externalId, ...change, occurredAt, id });
  return {
    customer,
    id,
    request: () => ({
      body,
      headers: {
        'content-type': 'application/json',
        ...signErpRequest(body, DEMO_TENANT.erpWebhookSecret, { id }),
      },
      erpTenant: TENANT,
    }),
  };
}

/**
 * `customers` customers (at least 8) of mixed kinds, `changesEach` changes for most of them. `tag`
 * keeps scenarios apart (external ids, emails, delivery ids).
 */
export function buildWorkload(tag: number, customers: number, changesEach: number): Workload {
  const random = seededRandom(tag);
  const all: Customer[] = [];
  const perCustomer: Delivery[][] = [];
  const idOf = (index: number) => `9${String(tag).padStart(2, '0')}${String(index).padStart(4, '0')}`;
  const emailOf = (index: number, what: string | number) => `c${tag}x${index}.${what}@faults.example`;

  const add = (customer: Customer, changes: ChangeSpec[]) => {
    all.push(customer);
    perCustomer.push(
      changes.map((change, n) =>
        deliveryOf(
          customer,
          `f${tag}-${customer.externalId}-${n}`,
          change,
          new Date(FIRST_CHANGE + n * 60_000).toISOString(),
        ),
      ),
    );
  };
  const sequence = (index: number, email: (n: number) => string) =>
    Array.from({ length: changesEach }, (_, n) => ({
      email: email(n + 1),
      phoneNumber: phone(index, n + 1),
    }));

  // Two trading emails (A and B), one wanting an email another customer keeps (C wants D's): ERP
  // customers with an email of their own and no phone.
  const [emailA, emailB, emailC, emailD] = [0, 1, 2, 3].map((i) => emailOf(i, 'own')) as [
    string,
    string,
    string,
    string,
  ];
  const emailOnly = (
    index: number,
    kind: CustomerKind,
    own: string,
    finalEmail: string,
    changes: ChangeSpec[],
    parkedReason?: string,
  ) => {
    const externalId = idOf(index);
    add(
      {
        externalId,
        kind,
        source: 'erp',
        seed: { external_id: externalId, email: own, phone_number: null },
        expected: { email: finalEmail, phone_number: null },
        ...(parkedReason && { parkedReason }),
      },
      changes,
    );
  };
  emailOnly(0, 'swap', emailA, emailB, [{ email: emailB, previous: { email: emailA } }]);
  emailOnly(1, 'swap', emailB, emailA, [{ email: emailA, previous: { email: emailB } }]);
  emailOnly(2, 'held', emailC, emailC, [{ email: emailD }], 'identifier_held_by_other_customer');
  emailOnly(3, 'held', emailD, emailD, []);

  const kinds: CustomerKind[] = ['update', 'create', 'bind'];
  for (let index = 4; index < customers; index++) {
    const kind = kinds[index % kinds.length] as CustomerKind;
    const externalId = idOf(index);
    if (kind === 'bind') {
      // Klaviyo's Shopify integration made the profile by email: the customer keeps it.
      const email = emailOf(index, 'kept');
      const changes = sequence(index, () => email);
      add(
        {
          externalId,
          kind,
          source: 'shopify',
          seed: { external_id: null, email, phone_number: null },
          expected: { email, phone_number: phone(index, changesEach) },
        },
        changes,
      );
      continue;
    }
    const changes = sequence(index, (n) => emailOf(index, n));
    const expected = { email: emailOf(index, changesEach), phone_number: phone(index, changesEach) };
    if (kind === 'update') {
      add(
        {
          externalId,
          kind,
          source: 'shopify',
          seed: { external_id: externalId, email: emailOf(index, 0), phone_number: phone(index, 0) },
          expected,
        },
        changes,
      );
    } else {
      add({ externalId, kind, source: 'erp', expected }, changes);
    }
  }

  const changeIds = perCustomer.flat().map((delivery) => delivery.id);
  // A quarter of the deliveries sent three times; each customer's in a shuffled order.
  const shuffled = perCustomer.map((deliveries) =>
    shuffle(
      deliveries.flatMap((delivery) => (random() < 0.25 ? [delivery, delivery, delivery] : [delivery])),
      random,
    ),
  );
  const deliveries: Delivery[] = [];
  while (shuffled.some((queue) => queue.length > 0)) {
    const open = shuffled.filter((queue) => queue.length > 0);
    deliveries.push((open[Math.floor(random() * open.length)] as Delivery[]).shift() as Delivery);
  }
  return { customers: all, deliveries, changeIds };
}
