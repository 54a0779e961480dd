import { LogFormatter, LogItem } from '@aws-lambda-powertools/logger';
import type { LogAttributes, UnformattedAttributes } from '@aws-lambda-powertools/logger/types';

/**
 * Powertools' log line without what every line of a function's log group repeats: the function's
 * ARN, name and memory size, the sampling rate, and the service name (one for every function of
 * the stack). That is about 220 bytes a line, a third of a typical one, and CloudWatch bills
 * ingestion by the byte (bench/RESULTS.md, log volume). Kept: level, message, time, request id
 * and trace id, `cold_start: true` on a cold start's lines (left out when false, as most are),
 * then the line's own keys.
 */
export class LeanLogFormatter extends LogFormatter {
  override formatAttributes(attributes: UnformattedAttributes, additional: LogAttributes): LogItem {
    return new LogItem({
      attributes: {
        level: attributes.logLevel,
        message: attributes.message,
        timestamp: this.formatTimestamp(attributes.timestamp),
        cold_start: attributes.lambdaContext?.coldStart || undefined,
        function_request_id: attributes.lambdaContext?.awsRequestId,
        xray_trace_id: attributes.xRayTraceId,
      },
    }).addAttributes(additional);
  }
}
