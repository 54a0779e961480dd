import type { WebhookRequest, WebhookResponse } from '../http.js';
import type { IdentityChange, QueuedChange } from '../identity-change.js';
import type { Telemetry } from '../observability/telemetry.js';
import type { DeadLetter, WebhookSecret } from '../ports.js';

/**
 * What a webhook source (Shopify, the ERP contract, …) supplies to the shared intake
 * (lib/intake/receive.ts): how its requests are signed, which tenant they are for, and how a
 * verified body becomes identity changes. Everything else (size limit, secrets, rotation,
 * refusals, queueing, dead letters) is the intake's, the same for every source.
 */
export interface WebhookSource {
  name: IdentityChange['source'];
  /** Larger bodies are refused with 413 when unsigned, and kept unread (but hashed) when signed. */
  maxBodyBytes: number;
  /** The tenant the request is for, before anything is verified; undefined when it names none. */
  tenantOf(request: WebhookRequest): string | undefined;
  /**
   * When the request names no tenant: the tenants whose secrets may still have signed it (Shopify:
   * one app signs for every shop). Signed with one of theirs, it is kept on the dead-letter queue as
   * unknown_tenant and answered 200 (a retry would not help); otherwise refused as not authenticated.
   */
  signersWhenUnknown?(request: WebhookRequest): readonly string[];
  /** The delivery's id, the same on every retry of it; the body's SHA-256 stands in when absent. */
  deliveryIdOf(request: WebhookRequest): string | undefined;
  /**
   * Why the request cannot be signed whatever the secret (a signature header missing, a stale
   * timestamp), or undefined. Checked before any secret is read; the message is the 401's.
   */
  unsignedReason(request: WebhookRequest, now: Date): string | undefined;
  /** This source's signing secrets in the tenant's secret (several during a rotation). */
  secretsOf(secret: WebhookSecret): readonly string[];
  /** Whether the request is signed with one of `secrets`, compared in constant time. */
  isSignedWith(request: WebhookRequest, secrets: readonly string[], now: Date): boolean;
  /**
   * What names the signed content when the signature covers only the body (Shopify: its digest),
   * so that the same body under another delivery id is told as a replay (receive.ts, SeenBodies);
   * claimed only for changes a replay could harm (replay.ts, replayCouldHarm).
   * Absent where the signature covers the delivery id and a timestamp (the ERP's Standard Webhooks).
   */
  replayKeyOf?(request: WebhookRequest): string;
  /** Facts kept with a letter about the whole body (e.g. Shopify's topic and shop). */
  letterContext?(request: WebhookRequest): Record<string, unknown>;
  /** What a verified body asks for. */
  read(request: WebhookRequest, delivery: VerifiedDelivery): Reading;
}

/** How long a signed body is remembered to tell its replays: a day, past Shopify's 4 hours of retries. */
export const REPLAY_WINDOW_SECONDS = 24 * 3600;

export interface VerifiedDelivery {
  tenant: string;
  deliveryId: string;
  receivedAt: Date;
  log: Telemetry['log'];
}

/** A change the source could not use, kept on the dead-letter queue with its reason. */
export type RejectedChange = Pick<
  DeadLetter,
  'reason' | 'detail' | 'sourceEventId' | 'externalId' | 'context'
> & {
  /** The change as it was sent. */
  payload: string;
};

export type Reading =
  /** Nothing to do (e.g. a topic we do not process): 200 `{status: 'ignored', reason}`. */
  | { kind: 'ignored'; reason: string }
  /** Not a request of the source's contract at all: answered `answer`, nothing kept. */
  | { kind: 'refused'; reason: string; answer: WebhookResponse }
  /** Signed but unusable as a whole: the body is kept, 200 `{status: 'dead-lettered', reason}`. */
  | { kind: 'unusable'; reason: string }
  /** Changes to queue and changes kept with their reason; answered `answer` once all are sent. */
  | { kind: 'changes'; changes: QueuedChange[]; rejected: RejectedChange[]; answer: WebhookResponse };
