import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { logger, metrics } from '../lib/observability/telemetry.js';

/**
 * Every function's Lambda handler: `handle` with the invocation's context on each log line and
 * the metrics flushed at its end.
 */
export const lambdaHandler = <Event, Result>(handle: (event: Event, context: Context) => Promise<Result>) =>
  middy(handle).use(injectLambdaContext(logger)).use(logMetrics(metrics));
