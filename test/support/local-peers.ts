import { afterAll, beforeAll } from 'vitest';
import { createDynamoAuditLog, createDynamoSyncState } from '../../lib/adapters/dynamo-sync-state.js';
import { KLAVIYO_REVISION } from '../../lib/config.js';
import { createKlaviyoClient } from '../../lib/klaviyo/client.js';
import { defaultPolicies } from '../../lib/policies.js';
import type { WorkerDependencies } from '../../lib/sync/handle-message.js';
import { DEMO_TENANT } from '../../scripts/local-stack/demo-tenant.js';
import {
  type LocalPeers,
  type LocalPeersOptions,
  startLocalPeers,
  TABLE_NAME,
} from '../../scripts/local-stack/peers.js';
import { aDeadLetterRecorder, aRecordingTelemetry, testIdentifierKeyFor } from './factories.js';

/**
 * Sets `values` in process.env (as the functions and the AWS SDK clients read their settings from
 * it, in production too) and returns what puts process.env back as it was.
 */
export function setEnv(values: Record<string, string | undefined>): () => void {
  const before = new Map(Object.keys(values).map((name) => [name, process.env[name]]));
  for (const [name, value] of Object.entries(values)) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  return () => {
    for (const [name, value] of before) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  };
}

/**
 * The local peers for the tests of one file: started before them, stopped after them. With
 * `inEnv`, process.env points at them meanwhile (put back afterwards). Read the peers only inside
 * hooks and tests: the object stands for them once they are started.
 */
export function useLocalPeers(options: LocalPeersOptions & { inEnv?: boolean } = {}): LocalPeers {
  const { inEnv = false, ...peersOptions } = options;
  let started: LocalPeers | undefined;
  let restoreEnv = () => {};
  beforeAll(async () => {
    started = await startLocalPeers(peersOptions);
    if (inEnv) restoreEnv = setEnv(started.env);
  });
  afterAll(async () => {
    restoreEnv();
    await started?.stop();
  });
  return new Proxy({} as LocalPeers, {
    get(_, name) {
      if (!started) throw new Error(`the local peers are started in beforeAll (read: ${String(name)})`);
      return started[name as keyof LocalPeers];
    },
  });
}

/** useLocalPeers with process.env pointing at them: for code that reads its settings as in production. */
export const usePeersInEnv = (options: LocalPeersOptions = {}) => useLocalPeers({ ...options, inEnv: true });

/**
 * The worker's dependencies against the local peers: state and audit in dynalite, the demo
 * tenant's Klaviyo (the sandbox) through the real client, applying (not a dry run).
 */
export function aLocalWorker(
  peers: LocalPeers,
  overrides: Partial<WorkerDependencies> = {},
): WorkerDependencies {
  return {
    state: createDynamoSyncState(peers.dynamodb, TABLE_NAME),
    audit: createDynamoAuditLog(peers.dynamodb, TABLE_NAME, 30),
    policiesFor: () => ({ ...defaultPolicies, dryRun: false }),
    identifierKeyFor: testIdentifierKeyFor,
    klaviyoFor: async () =>
      createKlaviyoClient({
        baseUrl: peers.klaviyoBaseUrl,
        apiKey: DEMO_TENANT.klaviyoPrivateKey,
        revision: KLAVIYO_REVISION,
        timeoutMs: 5_000,
      }),
    deadLetters: aDeadLetterRecorder(),
    telemetry: aRecordingTelemetry().telemetry,
    clock: () => new Date(),
    ...overrides,
  };
}
