import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { lowerCaseHeaders, type WebhookRequest, type WebhookResponse } from '../lib/http.js';
import type { WebhookIntake } from '../lib/intake/receive.js';
import { lambdaHandler } from './handler.js';

/** Between API Gateway HTTP API events (payload 2.0) and the core's webhook request and response. */
export function webhookRequestOf(event: APIGatewayProxyEventV2): WebhookRequest {
  return {
    headers: lowerCaseHeaders(event.headers),
    // Signatures cover the exact bytes sent; API Gateway may hand them over base64.
    body: Buffer.from(event.body ?? '', event.isBase64Encoded ? 'base64' : 'utf8'),
    ...(event.pathParameters && { pathParameters: event.pathParameters }),
  };
}

export function httpApiResponse(response: WebhookResponse): APIGatewayProxyStructuredResultV2 {
  return {
    statusCode: response.statusCode,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(response.body),
  };
}

/** The Lambda handler of a webhook route: HTTP API event in, the intake, HTTP response out. */
export function webhookHandler(intake: WebhookIntake) {
  return lambdaHandler(
    async (event: APIGatewayProxyEventV2): Promise<APIGatewayProxyStructuredResultV2> =>
      httpApiResponse(await intake(webhookRequestOf(event))),
  );
}
