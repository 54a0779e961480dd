import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { FailedInvocation } from '../lib/intake/failed-invocation.js';

/**
 * What Lambda's asynchronous invocation does with an event (as EventBridge invokes a function),
 * for running a handler so locally: it invokes the handler; when the handler throws it tries again
 * up to `maximumRetryAttempts` times (Lambda waits about 1 minute before the second try and
 * 2 minutes before the third; shorter here when asked), unless the event is older than
 * `maximumEventAgeSeconds` by then; an event still failing is sent to the on-failure destination,
 * a standard SQS queue, as Lambda's invocation record (AWS Lambda developer guide, "Capturing
 * records of Lambda asynchronous invocations"). Lambda's own queueing and concurrency are left out.
 */
export interface AsyncInvokerOptions {
  handler: (event: unknown) => Promise<unknown>;
  functionArn: string;
  /** The on-failure destination. */
  onFailure: { sqs: SQSClient; queueUrl: string };
  /** 0 to 2, Lambda's default 2. */
  maximumRetryAttempts?: number;
  /** 60 to 21600, Lambda's default 21600 (6 hours). */
  maximumEventAgeSeconds?: number;
  /** Before the second try, before the third: Lambda's 1 and 2 minutes by default. */
  retryDelaysMs?: [number, number];
}

export type AsyncOutcome =
  | { status: 'succeeded'; attempts: number; response: unknown }
  | { status: 'sent-to-destination'; attempts: number; record: FailedInvocation };

export function lambdaAsyncInvoker(options: AsyncInvokerOptions): (event: unknown) => Promise<AsyncOutcome> {
  const retries = options.maximumRetryAttempts ?? 2;
  const maxAgeMs = (options.maximumEventAgeSeconds ?? 21_600) * 1000;
  const [firstDelay, secondDelay] = options.retryDelaysMs ?? [60_000, 120_000];
  return async (event) => {
    const receivedAt = Date.now();
    const requestId = crypto.randomUUID();
    let attempts = 0;
    let condition = 'RetriesExhausted';
    let lastError: unknown;
    for (;;) {
      attempts++;
      try {
        return { status: 'succeeded', attempts, response: await options.handler(event) };
      } catch (error) {
        lastError = error;
      }
      if (attempts > retries) break;
      await new Promise((resolve) => setTimeout(resolve, attempts === 1 ? firstDelay : secondDelay));
      if (Date.now() - receivedAt > maxAgeMs) {
        condition = 'EventAgeExceeded';
        break;
      }
    }
    const record: FailedInvocation = {
      version: '1.0',
      timestamp: new Date().toISOString(),
      requestContext: {
        requestId,
        functionArn: `${options.functionArn}:$LATEST`,
        condition,
        approximateInvokeCount: attempts,
      },
      requestPayload: event as FailedInvocation['requestPayload'],
      responseContext: { statusCode: 200, executedVersion: '$LATEST', functionError: 'Unhandled' },
      responsePayload: {
        errorType: (lastError as Error)?.name ?? 'Error',
        errorMessage: (lastError as Error)?.message ?? String(lastError),
        trace: [],
      },
    };
    await options.onFailure.sqs.send(
      new SendMessageCommand({ QueueUrl: options.onFailure.queueUrl, MessageBody: JSON.stringify(record) }),
    );
    return { status: 'sent-to-destination', attempts, record };
  };
}
