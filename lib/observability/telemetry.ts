import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';

/**
 * One logger and one metrics sink per process, shared by handlers and core. Powertools reads
 * POWERTOOLS_SERVICE_NAME, POWERTOOLS_METRICS_NAMESPACE and LOG_LEVEL from the environment.
 */
export const logger = new Logger({
  serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'klaviyo-identity-sync',
});

export const metrics = new Metrics({
  namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? 'KlaviyoIdentitySync',
  serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'klaviyo-identity-sync',
});

/** The outcomes we count; their names are the metric names in CloudWatch. */
export type Outcome =
  | 'WebhookAccepted'
  | 'WebhookIgnored'
  | 'WebhookRejected'
  | 'WebhookDeadLettered'
  | 'ChangeApplied'
  | 'ChangeUnchanged'
  | 'ProfileCreated'
  | 'ProfileBound'
  | 'ProfileMerged'
  | 'IdentifiersSwapped'
  | 'ChangeStale'
  | 'ChangeSkipped'
  | 'ChangePlanned'
  /** Parked on the dead-letter queue: could not be applied as it was. */
  | 'ChangeFailed'
  | 'ChangeRetried';

/** The narrow surface the core needs, so tests can hand it a recorder instead. */
export interface Telemetry {
  log: Pick<Logger, 'debug' | 'info' | 'warn' | 'error'>;
  count(outcome: Outcome, value?: number): void;
}

export const telemetry: Telemetry = {
  log: logger,
  count: (outcome, value = 1) => metrics.addMetric(outcome, MetricUnit.Count, value),
};
