import { LogFormatter, LogItem } from '@aws-lambda-powertools/logger';
import type { LogAttributes, UnformattedAttributes } from '@aws-lambda-powertools/logger/types';

/**
 * Powertools' log line without what every line of a function's log group repeats: the function's
 * ARN, name and memory size, and the sampling rate. That is about 190 bytes a line, a third of a
 * typical one, and CloudWatch bills ingestion by the byte (bench/RESULTS.md, log volume). Kept:
 * level, message, time, service, cold start, request id and trace id, then the line's own keys.
 */
export class LeanLogFormatter extends LogFormatter {
  override formatAttributes(attributes: UnformattedAttributes, additional: LogAttributes): LogItem {
    return new LogItem({
      attributes: {
        level: attributes.logLevel,
        message: attributes.message,
        timestamp: this.formatTimestamp(attributes.timestamp),
        service: attributes.serviceName,
        cold_start: attributes.lambdaContext?.coldStart,
        function_request_id: attributes.lambdaContext?.awsRequestId,
        xray_trace_id: attributes.xRayTraceId,
      },
    }).addAttributes(additional);
  }
}
