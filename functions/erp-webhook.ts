import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { createErpIntake } from '../lib/composition.js';
import { loadConfig } from '../lib/config.js';
import { receiveErpWebhook } from '../lib/erp/receive-webhook.js';
import { logger, metrics } from '../lib/observability/telemetry.js';
import { httpApiResponse, webhookRequestOf } from './http-api.js';

// Built once per container: configuration errors fail the cold start, naming the setting.
const intake = createErpIntake(loadConfig());

/** POST /webhooks/erp/{tenant}: API Gateway HTTP API event in, core call, HTTP response out. */
async function erpWebhook(event: APIGatewayProxyEventV2): Promise<APIGatewayProxyStructuredResultV2> {
  const request = { ...webhookRequestOf(event), tenant: event.pathParameters?.tenant };
  return httpApiResponse(await receiveErpWebhook(request, intake));
}

export const handler = middy(erpWebhook).use(injectLambdaContext(logger)).use(logMetrics(metrics));
