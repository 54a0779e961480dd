import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';

/**
 * Lambda invocation inputs as AWS builds them (API Gateway HTTP API payload 2.0, a Lambda
 * context), for running the handlers in-process: the test harness and the benchmarks.
 */
export function lambdaContext(functionName: string): Context {
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:us-east-1:000000000000:function:${functionName}`,
    memoryLimitInMB: '512',
    awsRequestId: crypto.randomUUID(),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => 30_000,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

/** The route an API Gateway event was matched to; the Shopify webhook's unless said. */
export interface HttpRoute {
  routeKey: string;
  path: string;
  pathParameters?: Record<string, string>;
}

const SHOPIFY_ROUTE: HttpRoute = { routeKey: 'POST /webhooks/shopify', path: '/webhooks/shopify' };

export function httpApiEvent(
  body: string,
  headers: Record<string, string>,
  base64 = false,
  route: HttpRoute = SHOPIFY_ROUTE,
): APIGatewayProxyEventV2 {
  return {
    version: '2.0',
    routeKey: route.routeKey,
    rawPath: route.path,
    rawQueryString: '',
    headers,
    ...(route.pathParameters && { pathParameters: route.pathParameters }),
    isBase64Encoded: base64,
    body: base64 ? Buffer.from(body).toString('base64') : body,
    requestContext: {
      accountId: '000000000000',
      apiId: 'local',
      domainName: 'localhost',
      domainPrefix: 'localhost',
      http: {
        method: 'POST',
        path: route.path,
        protocol: 'HTTP/1.1',
        sourceIp: '127.0.0.1',
        userAgent: 'Shopify',
      },
      requestId: crypto.randomUUID(),
      routeKey: route.routeKey,
      stage: '$default',
      time: new Date().toISOString(),
      timeEpoch: Date.now(),
    },
  };
}
