import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { Reason } from '../reasons.js';
import { LeanLogFormatter } from './log-format.js';

/**
 * One logger and one metrics sink per process, shared by handlers and core. Powertools reads
 * POWERTOOLS_SERVICE_NAME, POWERTOOLS_METRICS_NAMESPACE and LOG_LEVEL from the environment.
 */
export const logger = new Logger({
  serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'klaviyo-identity-sync',
  logFormatter: new LeanLogFormatter(),
});

export const metrics = new Metrics({
  namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? 'KlaviyoIdentitySync',
  serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'klaviyo-identity-sync',
});

/**
 * What we count; the names are the metric names in CloudWatch (infra/dashboard.yml charts them and
 * test/infra/template.test.ts holds the dashboard to this list).
 */
export const OUTCOMES = [
  'WebhookAccepted',
  'WebhookIgnored',
  'WebhookRejected',
  'WebhookDeadLettered',
  'ChangeApplied',
  'ChangeUnchanged',
  'ProfileCreated',
  'ProfileBound',
  'ProfileMerged',
  'IdentifiersSwapped',
  'ChangeStale',
  'ChangeSkipped',
  'ChangePlanned',
  /** Parked on the dead-letter queue: could not be applied as it was. */
  'ChangeFailed',
  'ChangeRetried',
  /** A customer (or a shop) erased on request: Shopify's redact topics, an ERP erasure, `forget`. */
  'CustomerErased',
  /** A customer's data request answered: its export delivered (the alerts topic hears of it). */
  'DataRequestExported',
  /** Counted by the wiring (lib/composition.ts): Klaviyo's answers, in-place retries and 429s. */
  'KlaviyoRequest',
  'KlaviyoRetried',
  'KlaviyoThrottled',
  /** Every letter put on the dead-letter queue, with the dimension PARKED_REASON. */
  'Parked',
] as const;

export type Outcome = (typeof OUTCOMES)[number];

/** The dimension of `Parked`: the letter's reason, with Klaviyo's open-ended codes folded into one. */
export const PARKED_REASON = 'reason';
const KNOWN_REASONS: ReadonlySet<string> = new Set(Object.values(Reason));
export const parkedReasonDimension = (reason: string) =>
  KNOWN_REASONS.has(reason) ? reason : reason.startsWith('klaviyo_') ? 'klaviyo_error' : 'other';

/** The narrow surface the core needs, so tests can hand it a recorder instead. */
export interface Telemetry {
  log: Pick<Logger, 'debug' | 'info' | 'warn' | 'error'>;
  /** `dimensions`: kept few and of few values; each combination is a metric of its own. */
  count(outcome: Outcome, value?: number, dimensions?: Record<string, string>): void;
}

export const telemetry: Telemetry = {
  log: logger,
  count: (outcome, value = 1, dimensions) => {
    if (!dimensions) return metrics.addMetric(outcome, MetricUnit.Count, value);
    // Dimensions apply to a whole EMF document: a dimensioned count goes out on its own.
    const single = metrics.singleMetric();
    single.addDimensions(dimensions);
    single.addMetric(outcome, MetricUnit.Count, value);
  },
};
