import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { createShopifyIntake } from '../lib/composition.js';
import { loadConfig } from '../lib/config.js';
import { lowerCaseHeaders } from '../lib/http.js';
import { logger, metrics } from '../lib/observability/telemetry.js';
import { receiveShopifyWebhook } from '../lib/shopify/receive-webhook.js';

// Built once per container: configuration errors fail the cold start, naming the setting.
const intake = createShopifyIntake(loadConfig());

/** POST /webhooks/shopify: API Gateway HTTP API event in, core call, HTTP response out. */
async function shopifyWebhook(event: APIGatewayProxyEventV2): Promise<APIGatewayProxyStructuredResultV2> {
  const response = await receiveShopifyWebhook(
    {
      headers: lowerCaseHeaders(event.headers),
      // The signature covers the exact bytes Shopify sent; API Gateway may hand them over base64.
      body: Buffer.from(event.body ?? '', event.isBase64Encoded ? 'base64' : 'utf8'),
    },
    intake,
  );
  return {
    statusCode: response.statusCode,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(response.body),
  };
}

export const handler = middy(shopifyWebhook).use(injectLambdaContext(logger)).use(logMetrics(metrics));
