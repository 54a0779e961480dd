import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { createShopifyIntake } from '../lib/composition.js';
import { loadConfig } from '../lib/config.js';
import { logger, metrics } from '../lib/observability/telemetry.js';
import { receiveShopifyWebhook } from '../lib/shopify/receive-webhook.js';
import { httpApiResponse, webhookRequestOf } from './http-api.js';

// Built once per container: configuration errors fail the cold start, naming the setting.
const intake = createShopifyIntake(loadConfig());

/** POST /webhooks/shopify: API Gateway HTTP API event in, core call, HTTP response out. */
async function shopifyWebhook(event: APIGatewayProxyEventV2): Promise<APIGatewayProxyStructuredResultV2> {
  return httpApiResponse(await receiveShopifyWebhook(webhookRequestOf(event), intake));
}

export const handler = middy(shopifyWebhook).use(injectLambdaContext(logger)).use(logMetrics(metrics));
