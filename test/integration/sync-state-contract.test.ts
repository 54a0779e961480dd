import { createDynamoCustomerRecords } from '../../lib/adapters/dynamo-customer-records.js';
import { createDynamoAuditLog, createDynamoSyncState } from '../../lib/adapters/dynamo-sync-state.js';
import { createMemorySyncState } from '../../lib/adapters/memory-sync-state.js';
import { TABLE_NAME } from '../../scripts/local-stack/peers.js';
import { useLocalPeers } from '../support/local-peers.js';
import { describeSyncStateContract } from '../support/sync-state-contract.js';

/** One contract, two stores: the DynamoDB adapter against dynalite (the real SDK client) and the one in memory. */
const peers = useLocalPeers();

describeSyncStateContract('the DynamoDB sync state', () => ({
  state: createDynamoSyncState(peers.dynamodb, TABLE_NAME),
  audit: createDynamoAuditLog(peers.dynamodb, TABLE_NAME, 30),
  records: createDynamoCustomerRecords(peers.dynamodb, TABLE_NAME),
}));

describeSyncStateContract('the sync state in memory', () => {
  const store = createMemorySyncState();
  return { state: store, audit: store, records: store };
});
