import type { EventBridgeEvent } from 'aws-lambda';
import { createShopifyEventBridgeIntake } from '../lib/composition.js';
import { loadConfig } from '../lib/config.js';
import { lambdaHandler } from './handler.js';

const intake = createShopifyEventBridgeIntake(loadConfig());

/**
 * Shopify webhooks from the partner event bus (EventBridge invokes it asynchronously). Throwing
 * on a failure that may pass makes Lambda try the event again; the rest is answered by the core.
 */
export const handler = lambdaHandler((event: EventBridgeEvent<string, unknown>) => intake(event));
