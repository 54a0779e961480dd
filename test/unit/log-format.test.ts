import type { UnformattedAttributes } from '@aws-lambda-powertools/logger/types';
import { describe, expect, it } from 'vitest';
import { LeanLogFormatter } from '../../lib/observability/log-format.js';

/** The line LeanLogFormatter makes of a log call, as its JSON (what CloudWatch ingests and bills). */
function lineOf(logLevel: string, lambda: boolean) {
  const attributes = {
    logLevel,
    message: 'Change applied',
    timestamp: new Date('2026-05-01T12:00:00.000Z'),
    serviceName: 'klaviyo-identity-sync',
    sampleRateValue: 0,
    ...(lambda && {
      lambdaContext: {
        awsRequestId: 'c6af9ac6-7b61-11e6-9a41-93e812345678',
        coldStart: false,
        functionName: 'sync-worker',
        functionVersion: '$LATEST',
        invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:sync-worker',
        memoryLimitInMB: '256',
      },
    }),
  } as unknown as UnformattedAttributes;
  return new LeanLogFormatter()
    .formatAttributes(attributes, { tenant: 'acme', sourceEventId: 'wh-1' })
    .getAttributes();
}

describe('LeanLogFormatter', () => {
  it('leaves out, in Lambda, the time CloudWatch stamps and the request id of an INFO line', () => {
    expect(lineOf('INFO', true)).toEqual({
      level: 'INFO',
      message: 'Change applied',
      tenant: 'acme',
      sourceEventId: 'wh-1',
    });
  });

  it('keeps the request id on the lines an operator investigates', () => {
    expect(lineOf('WARN', true)).toMatchObject({
      function_request_id: 'c6af9ac6-7b61-11e6-9a41-93e812345678',
    });
    expect(lineOf('ERROR', true)).toMatchObject({
      function_request_id: 'c6af9ac6-7b61-11e6-9a41-93e812345678',
    });
  });

  it('keeps the time outside Lambda (the CLI, tests), where nothing stamps the line', () => {
    expect(lineOf('INFO', false)).toMatchObject({ timestamp: '2026-05-01T12:00:00.000Z' });
  });
});
