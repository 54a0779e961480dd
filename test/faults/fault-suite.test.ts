import { setTimeout as sleep } from 'node:timers/promises';
import type { SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { replay } from '../../cli/commands/replay.js';
import { createDynamoAuditLog } from '../../lib/adapters/dynamo-sync-state.js';
import { approximateMessageCount } from '../../lib/adapters/sqs-queues.js';
import type { KlaviyoSandbox } from '../../local/klaviyo-sandbox.js';
import { TABLE_NAME } from '../../scripts/local-stack/peers.js';
import { captureIo } from '../support/cli.js';
import { type AwsFault, type FaultProxy, startFaultProxy } from '../support/fault-proxy.js';
import { type Harness, startHarness } from '../support/harness.js';
import {
  duplicateProfiles,
  endpointLoad,
  missingOutcomes,
  outcomeCounts,
  profileMismatches,
  recordedOutcomes,
  repeatedOutcomes,
} from './checks.js';
import { buildWorkload, type Delivery, type Workload } from './workload.js';

/**
 * The fault suite: mixed changes go through the whole local stack (the intakes, the FIFO queue,
 * the worker, DynamoDB, Secrets Manager, the Klaviyo sandbox) while one fault is injected at a
 * time, and every change must end with exactly one recorded outcome, Klaviyo with the latest
 * change of each customer, no duplicate profile and no endpoint over its limit.
 *
 * `npm test` runs the CI size; `npm run test:faults` (FAULT_SUITE_SIZE=full) the full one, with a
 * 60-second Klaviyo outage. Time is scaled: the worker's retry delays are 1–2 s instead of
 * 30–900 s, Klaviyo's client times out after 1 s with a 3 s retry budget, and the worker's Lambda
 * timeout and the queue's visibility timeout are 10 s (a killed invocation's messages come back then).
 */
const FULL = process.env.FAULT_SUITE_SIZE === 'full';
const SIZE = FULL
  ? { customers: 40, changesEach: 4, klaviyoOutageMs: 60_000, stormMs: 10_000, awsOutageMs: 15_000, kills: 8 }
  : { customers: 13, changesEach: 3, klaviyoOutageMs: 8_000, stormMs: 3_000, awsOutageMs: 4_000, kills: 3 };
const CONVERGE_WITHIN_MS = FULL ? 240_000 : 90_000;
const KLAVIYO_TIMEOUT_MS = 1_000;
/** As in AWS, the queue's visibility timeout is no shorter: no message is worked on twice at once. */
const WORKER_TIMEOUT_MS = 10_000;

interface Stack {
  harness: Harness;
  klaviyo: KlaviyoSandbox;
  dynamodb: FaultProxy;
  secrets: FaultProxy;
}

interface Scenario {
  name: string;
  inject(stack: Stack): void;
  /** Requests that have met the injected fault so far: a fault nothing met tested nothing. */
  met?(stack: Stack): number;
  /** Loses the worker's answers as a killed invocation would; the queue redelivers. */
  killsAfterWrites?: number;
}

const klaviyoFault = (fault: Parameters<KlaviyoSandbox['injectFaults']>[0]) => ({
  inject: ({ klaviyo }: Stack) => klaviyo.injectFaults(fault),
  met: ({ klaviyo }: Stack) => klaviyo.requests.filter((request) => request.fault).length,
});
const aws = (proxy: 'dynamodb' | 'secrets', fault: AwsFault) => ({
  inject: (stack: Stack) => stack[proxy].inject(fault),
  met: (stack: Stack) => stack[proxy].failed[fault.kind],
});

const SCENARIOS: Scenario[] = [
  { name: 'no fault', inject: () => undefined },
  {
    name: 'Klaviyo 5xx on 20% of requests',
    ...klaviyoFault({ status: 503, probability: 0.2 }),
  },
  {
    name: `Klaviyo 429 storm (${SIZE.stormMs / 1000} s)`,
    ...klaviyoFault({ status: 429, retryAfterSeconds: 1, forMs: SIZE.stormMs }),
  },
  {
    name: 'Klaviyo slower than the client timeout (25%)',
    ...klaviyoFault({ delayMs: KLAVIYO_TIMEOUT_MS * 1.5, afterApplying: true, probability: 0.25 }),
  },
  {
    name: 'connection reset before applying (20%)',
    ...klaviyoFault({ reset: true, probability: 0.2 }),
  },
  {
    name: 'connection reset after applying (20%)',
    ...klaviyoFault({ reset: true, afterApplying: true, probability: 0.2 }),
  },
  {
    name: `Klaviyo down (${SIZE.klaviyoOutageMs / 1000} s)`,
    ...klaviyoFault({ reset: true, forMs: SIZE.klaviyoOutageMs }),
  },
  {
    name: `Secrets Manager down (${SIZE.awsOutageMs / 1000} s)`,
    ...aws('secrets', { kind: 'unavailable', forMs: SIZE.awsOutageMs }),
  },
  { name: 'DynamoDB throttling (30%)', ...aws('dynamodb', { kind: 'throttle', probability: 0.3 }) },
  {
    name: `DynamoDB down (${SIZE.awsOutageMs / 1000} s)`,
    ...aws('dynamodb', { kind: 'reset', forMs: SIZE.awsOutageMs }),
  },
  {
    name: 'worker killed after a PATCH, before acknowledging',
    inject: () => undefined,
    killsAfterWrites: SIZE.kills,
  },
];

let stack: Stack;
/** What the worker's invocations did in the running scenario. */
const invocations = { maxReceiveCount: 0, killsLeft: 0 };
const rows: string[] = [];

const appliedWrites = (klaviyo: KlaviyoSandbox) =>
  klaviyo.requests.filter((r) => r.method !== 'GET' && r.status >= 200 && r.status < 300).length;

beforeAll(async () => {
  const [dynamodb, secrets] = await Promise.all([startFaultProxy(), startFaultProxy()]);
  const harness = await startHarness({
    // The queue as deployed (its maxReceiveCount), hiding a message as long as the worker may take.
    peers: { visibilityTimeoutSeconds: WORKER_TIMEOUT_MS / 1000, maxReceiveCount: undefined },
    env: (peers) => {
      dynamodb.target = peers.env.AWS_ENDPOINT_URL_DYNAMODB as string;
      secrets.target = peers.env.AWS_ENDPOINT_URL_SECRETS_MANAGER as string;
      return {
        AWS_ENDPOINT_URL_DYNAMODB: dynamodb.url,
        AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.url,
        KLAVIYO_TIMEOUT_MS: String(KLAVIYO_TIMEOUT_MS),
        KLAVIYO_RETRY_BUDGET_MS: '3000',
        SECRET_CACHE_TTL_SECONDS: '1',
        KLAVIYO_KEY_CACHE_TTL_SECONDS: '1',
        RETRY_FIRST_DELAY_SECONDS: '1',
        RETRY_MAX_DELAY_SECONDS: '2',
      };
    },
    worker: {
      concurrency: 3,
      timeoutMs: WORKER_TIMEOUT_MS,
      async around(invoke, event: SQSEvent) {
        for (const record of event.Records) {
          invocations.maxReceiveCount = Math.max(
            invocations.maxReceiveCount,
            Number(record.attributes.ApproximateReceiveCount),
          );
        }
        const klaviyo = stack.klaviyo;
        const before = appliedWrites(klaviyo);
        const response = await invoke(event);
        if (invocations.killsLeft > 0 && appliedWrites(klaviyo) > before) {
          invocations.killsLeft--;
          throw new Error('worker killed before the queue heard from it');
        }
        return response;
      },
    },
  });
  stack = { harness, klaviyo: harness.peers.klaviyo as KlaviyoSandbox, dynamodb, secrets };
}, 60_000);

afterAll(async () => {
  await stack?.harness.stop();
  await Promise.all([stack?.dynamodb.stop(), stack?.secrets.stop()]);
  if (rows.length > 0) {
    console.log(
      [
        `Fault suite (${FULL ? 'full' : 'CI'} size: ${SIZE.customers} customers, ${SIZE.changesEach} changes each), ${new Date().toISOString().slice(0, 10)}`,
        '| Fault | Changes | Outcomes | Missing | Twice | Parked | Profiles as expected | Duplicate profiles | Busiest endpoint (1 s / 1 min) | Most receives | Converged in |',
        '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
        ...rows.map((row) => `| ${row} |`),
      ].join('\n'),
    );
  }
});

/** Sends every delivery, retrying 5xx answers as Shopify and ERPs do; a few at a time. */
async function sendAll(harness: Harness, deliveries: readonly Delivery[], deadline: number) {
  const pending = [...deliveries];
  const send = async (delivery: Delivery) => {
    for (;;) {
      const { body, headers, erpTenant } = delivery.request();
      const answer = erpTenant
        ? await harness.deliverErp(erpTenant, body, headers)
        : await harness.deliver(body, headers);
      if (answer.statusCode < 500) {
        expect(answer.statusCode, `${delivery.id}: ${JSON.stringify(answer.body)}`).toBeLessThan(300);
        return;
      }
      if (Date.now() > deadline) throw new Error(`${delivery.id} still refused with ${answer.statusCode}`);
      await sleep(250);
    }
  };
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      for (let delivery = pending.shift(); delivery; delivery = pending.shift()) await send(delivery);
    }),
  );
}

function seed(klaviyo: KlaviyoSandbox, workload: Workload) {
  for (const { seed: profile } of workload.customers) if (profile) klaviyo.seedProfile(profile);
}

describe(`the fault suite (${FULL ? 'full' : 'CI'} size)`, () => {
  it.each(SCENARIOS.map((scenario, index) => [scenario.name, scenario, index] as const))(
    'under %s, every change ends once and Klaviyo ends right',
    async (_name, scenario, index) => {
      const { harness, klaviyo } = stack;
      const audit = createDynamoAuditLog(harness.peers.dynamodb, TABLE_NAME, 400);
      klaviyo.reset();
      const workload = buildWorkload(index + 1, SIZE.customers, SIZE.changesEach);
      seed(klaviyo, workload);
      invocations.maxReceiveCount = 0;
      invocations.killsLeft = scenario.killsAfterWrites ?? 0;

      const started = Date.now();
      const deadline = started + CONVERGE_WITHIN_MS;
      const metBefore = scenario.met?.(stack) ?? 0;
      scenario.inject(stack);
      harness.poller.start();
      const letters: { sourceEventId?: string; reason?: string }[] = [];
      let outcomes = await recordedOutcomes(audit, workload, letters);
      try {
        await sendAll(harness, workload.deliveries, deadline);
        // Converged: every change has its outcome, and nothing is queued or in flight.
        for (;;) {
          for (const { letter } of await harness.takeDeadLetters())
            letters.push(letter as (typeof letters)[number]);
          outcomes = await recordedOutcomes(audit, workload, letters);
          if (missingOutcomes(outcomes).length === 0 && (await harness.queueDepth()) === 0) break;
          if (Date.now() > deadline) break;
          await sleep(250);
        }
      } finally {
        await harness.poller.stop();
        klaviyo.clearFaults();
        stack.dynamodb.clear();
        stack.secrets.clear();
      }
      const convergedSeconds = (Date.now() - started) / 1000;

      const missing = missingOutcomes(outcomes);
      const twice = repeatedOutcomes(outcomes);
      const mismatches = profileMismatches(klaviyo, workload.customers);
      const duplicates = duplicateProfiles(klaviyo, workload.customers);
      const load = endpointLoad(klaviyo.requests);
      const counts = outcomeCounts(outcomes);
      const parkedCount = Object.entries(counts)
        .filter(([outcome]) => outcome.startsWith('parked'))
        .reduce((sum, [, count]) => sum + count, 0);
      rows.push(
        [
          scenario.name,
          workload.changeIds.length,
          Object.values(counts).reduce((sum, count) => sum + count, 0),
          missing.length,
          twice.length,
          parkedCount,
          `${workload.customers.length - mismatches.length}/${workload.customers.length}`,
          duplicates,
          `${load.busiestSecond} / ${load.busiestMinute}`,
          invocations.maxReceiveCount,
          `${convergedSeconds.toFixed(1)} s`,
        ].join(' | '),
      );

      expect(missing, 'changes with no recorded outcome').toEqual([]);
      expect(twice, 'changes with more than one recorded outcome').toEqual([]);
      expect(mismatches, "customers whose profile is not their latest change's").toEqual([]);
      expect(duplicates, 'profiles beyond one per customer').toBe(0);
      expect(load.overLimit, 'endpoint windows over their limit').toEqual([]);
      expect(load.throttled, '429s from Klaviyo’s own limits').toBe(0);
      // Only the change that wants another customer's email is parked: nothing for waiting.
      const parked = workload.customers.filter((customer) => customer.parkedReason);
      expect(letters.map((letter) => letter.reason)).toEqual(parked.map((customer) => customer.parkedReason));
      expect(invocations.killsLeft, 'kills left unused').toBe(0);
      if (scenario.met)
        expect(scenario.met(stack) - metBefore, 'requests that met the fault').toBeGreaterThan(0);
    },
    CONVERGE_WITHIN_MS + 30_000,
  );

  it(
    'a change replayed while Klaviyo still refuses it is parked again, and applies once replayed after the fix',
    async () => {
      const { harness, klaviyo } = stack;
      const { sqs, deadLetterQueueUrl, queueUrl } = harness.peers;
      const audit = createDynamoAuditLog(harness.peers.dynamodb, TABLE_NAME, 400);
      klaviyo.reset();
      // The customers whose profile exists: every change of theirs is a PATCH, which Klaviyo refuses.
      const all = buildWorkload(SCENARIOS.length + 1, SIZE.customers, SIZE.changesEach);
      const customers = all.customers.filter((customer) => customer.kind === 'update');
      const deliveries = all.deliveries.filter((delivery) => customers.includes(delivery.customer));
      const workload = { customers, deliveries, changeIds: [...new Set(deliveries.map(({ id }) => id))] };
      seed(klaviyo, workload);
      const deadline = Date.now() + CONVERGE_WITHIN_MS;
      /** Waits until the worker is done and the dead-letter queue holds `parked` letters (or the deadline). */
      const settled = async (parked: number) => {
        for (;;) {
          const [waiting, letters] = await Promise.all([
            approximateMessageCount(sqs, queueUrl),
            approximateMessageCount(sqs, deadLetterQueueUrl),
          ]);
          if ((waiting === 0 && letters === parked) || Date.now() > deadline) return letters;
          await sleep(250);
        }
      };
      const replayRefused = async () => {
        const { io, written } = captureIo(harness.peers.env);
        expect(await replay(['--reason', 'klaviyo_invalid', '--yes'], io), written.stderr).toBe(0);
      };

      klaviyo.injectFaults({ status: 400, method: 'PATCH', forMs: CONVERGE_WITHIN_MS });
      harness.poller.start();
      try {
        await sendAll(harness, workload.deliveries, deadline);
        expect(await settled(workload.changeIds.length), 'letters after the first delivery').toBe(
          workload.changeIds.length,
        );
        await replayRefused();
        expect(await settled(workload.changeIds.length), 'letters after a replay too early').toBe(
          workload.changeIds.length,
        );
        klaviyo.clearFaults();
        await replayRefused();
        expect(await settled(0), 'letters after the replay that follows the fix').toBe(0);
      } finally {
        await harness.poller.stop();
        klaviyo.clearFaults();
      }

      const outcomes = await recordedOutcomes(audit, workload, []);
      expect(missingOutcomes(outcomes), 'changes with no outcome but parked').toEqual([]);
      expect(repeatedOutcomes(outcomes), 'changes with more than one outcome').toEqual([]);
      expect(profileMismatches(klaviyo, workload.customers)).toEqual([]);
    },
    CONVERGE_WITHIN_MS + 30_000,
  );
});
