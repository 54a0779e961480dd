import { afterAll, beforeAll } from 'vitest';
import { createDynamoCustomerRecords } from '../../lib/adapters/dynamo-customer-records.js';
import { createDynamoAuditLog, createDynamoSyncState } from '../../lib/adapters/dynamo-sync-state.js';
import { createMemorySyncState } from '../../lib/adapters/memory-sync-state.js';
import { type LocalPeers, startLocalPeers, TABLE_NAME } from '../../scripts/local-stack/peers.js';
import { describeSyncStateContract } from '../support/sync-state-contract.js';

/** One contract, two stores: the DynamoDB adapter against dynalite (the real SDK client) and the one in memory. */
let peers: LocalPeers;
beforeAll(async () => {
  peers = await startLocalPeers();
});
afterAll(() => peers.stop());

describeSyncStateContract('the DynamoDB sync state', () => ({
  state: createDynamoSyncState(peers.dynamodb, TABLE_NAME),
  audit: createDynamoAuditLog(peers.dynamodb, TABLE_NAME, 30),
  records: createDynamoCustomerRecords(peers.dynamodb, TABLE_NAME),
}));

describeSyncStateContract('the sync state in memory', () => {
  const store = createMemorySyncState();
  return { state: store, audit: store, records: store };
});
