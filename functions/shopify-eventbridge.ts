import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { EventBridgeEvent } from 'aws-lambda';
import { createShopifyEventBridgeIntake } from '../lib/composition.js';
import { loadConfig } from '../lib/config.js';
import { logger, metrics } from '../lib/observability/telemetry.js';

const intake = createShopifyEventBridgeIntake(loadConfig());

/**
 * Shopify webhooks from the partner event bus (EventBridge invokes it asynchronously). Throwing
 * on a failure that may pass makes Lambda try the event again; the rest is answered by the core.
 */
export const handler = middy((event: EventBridgeEvent<string, unknown>) => intake(event))
  .use(injectLambdaContext(logger))
  .use(logMetrics(metrics));
