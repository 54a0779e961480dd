import { LogFormatter, LogItem } from '@aws-lambda-powertools/logger';
import type { LogAttributes, UnformattedAttributes } from '@aws-lambda-powertools/logger/types';

/** The levels whose lines keep the invocation's request id: the ones an operator investigates. */
const INVESTIGATED: ReadonlySet<string> = new Set(['WARN', 'ERROR', 'CRITICAL']);

/**
 * Powertools' log line without what every line of a function's log group repeats: the function's
 * ARN, name and memory size, the sampling rate, and the service name (one for every function of
 * the stack). CloudWatch bills ingestion by the byte (bench/RESULTS.md, log volume). Kept: level
 * (Lambda filters on it), message, trace id, `cold_start: true` on a cold start's lines (left out
 * when false, as most are), then the line's own keys. In Lambda, `timestamp` is left out
 * (CloudWatch stamps each line as written: `@timestamp`, to the millisecond), and so is the
 * request id on INFO and DEBUG lines: they are traced by delivery id and source event id, and
 * with Lambda's own START and REPORT lines switched off (serverless.yml) the id would join them
 * to nothing but the invocation's WARN and ERROR lines, which keep it. About 95 bytes a line.
 */
export class LeanLogFormatter extends LogFormatter {
  override formatAttributes(attributes: UnformattedAttributes, additional: LogAttributes): LogItem {
    const lambda = attributes.lambdaContext;
    return new LogItem({
      attributes: {
        level: attributes.logLevel,
        message: attributes.message,
        timestamp: lambda ? undefined : this.formatTimestamp(attributes.timestamp),
        cold_start: lambda?.coldStart || undefined,
        function_request_id: INVESTIGATED.has(attributes.logLevel) ? lambda?.awsRequestId : undefined,
        xray_trace_id: attributes.xRayTraceId,
      },
    }).addAttributes(additional);
  }
}
