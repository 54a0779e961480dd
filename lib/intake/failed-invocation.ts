import * as z from 'zod';
import { describeIssues } from '../validation.js';

/**
 * Lambda's record of an asynchronous invocation that failed every try, as it sends it to an
 * on-failure destination (AWS Lambda developer guide, "Capturing records of Lambda asynchronous
 * invocations"): the event the function was given in `requestPayload`, why it was given up in
 * `requestContext.condition` (`RetriesExhausted`, `EventAgeExceeded`) and the last error in
 * `responsePayload`.
 */
const failedInvocationSchema = z.object({
  version: z.string(),
  timestamp: z.string(),
  requestContext: z.object({
    requestId: z.string().optional(),
    functionArn: z.string().optional(),
    condition: z.string(),
    approximateInvokeCount: z.number().int().nonnegative(),
  }),
  requestPayload: z.unknown().refine((payload) => payload !== undefined, 'is required'),
  responseContext: z.record(z.string(), z.unknown()).optional(),
  responsePayload: z.unknown().optional(),
});

export type FailedInvocation = z.output<typeof failedInvocationSchema>;

/** A destination record read from its message body, or why it is none. */
export function readFailedInvocation(
  body: string,
): { record: FailedInvocation; problem?: undefined } | { problem: string; record?: undefined } {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return { problem: 'not JSON' };
  }
  const parsed = failedInvocationSchema.safeParse(json);
  if (!parsed.success) {
    return { problem: `not a Lambda invocation record: ${describeIssues(parsed.error, 'record')}` };
  }
  return { record: parsed.data };
}
