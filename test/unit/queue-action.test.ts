import { describe, expect, it } from 'vitest';
import { PermanentError, TransientError } from '../../lib/errors.js';
import { KlaviyoApiError } from '../../lib/klaviyo/errors.js';
import {
  type ChangeOutcome,
  ChangeParkedError,
  errorOf,
  IdentifierHeldError,
  outcomeOfError,
  queueActionOf,
} from '../../lib/sync/outcome.js';

const held = { reason: 'identifier_held_by_other_customer', detail: 'held', context: { holderId: '01B' } };

/** The one place an outcome becomes what the queue does with the message. */
const ROWS: [situation: string, outcome: ChangeOutcome<string>, action: string, outOfTime?: boolean][] = [
  ['done: applied, skipped, erased…', { status: 'done', result: 'applied' }, 'acknowledge'],
  ['the plan parks (a duplicate, by policy)', { status: 'park', planned: true, ...held }, 'park'],
  [
    'a failure that parks (Klaviyo refused the data)',
    { status: 'park', reason: 'klaviyo_invalid', detail: '' },
    'park',
  ],
  [
    'the plan waits for another customer',
    { status: 'retry-later', planned: true, ...held },
    'hand-back',
    false,
  ],
  [
    'a failure for now (Klaviyo down)',
    { status: 'retry-later', reason: 'klaviyo_server_error', detail: '' },
    'hand-back',
    false,
  ],
  ['not tried: out of time', { status: 'retry-later', reason: 'out_of_time', detail: '' }, 'hand-back', true],
];

describe('queueActionOf', () => {
  it.each(ROWS)('%s', (_, outcome, action, outOfTime) => {
    const queued = queueActionOf(outcome);
    expect(queued.action).toBe(action);
    if (queued.action === 'hand-back') expect(queued.outOfTime).toBe(outOfTime);
  });
});

describe('outcomeOfError: a failure on the way as an outcome', () => {
  const klaviyo400 = new KlaviyoApiError(400, 'PATCH', '/api/profiles/x', [
    { code: 'invalid', detail: 'Invalid email.', source: { pointer: '/data/attributes/email' } },
  ]);
  it.each([
    ['transient', new TransientError('state_unavailable', 'down'), 'retry-later', 'state_unavailable'],
    ['an unknown error (a bug)', new TypeError('a bug'), 'retry-later', 'unexpected_error'],
    ['permanent', new PermanentError('tenant_secret_missing', 'no secret'), 'park', 'tenant_secret_missing'],
    ["Klaviyo's refusal", klaviyo400, 'park', 'klaviyo_invalid'],
  ] as const)('%s', (_, error, status, reason) => {
    expect(outcomeOfError(error)).toMatchObject({ status, reason, detail: error.message, error });
  });

  it("keeps Klaviyo's status, code and pointer for the letter", () => {
    expect(outcomeOfError(klaviyo400).context).toMatchObject({
      status: 400,
      code: 'invalid',
      pointer: '/data/attributes/email',
    });
  });
});

describe('errorOf: an outcome not done, for callers that take it as an error', () => {
  it("is the failure itself, or the plan's decision as an error of its own", () => {
    const failure = new TransientError('state_unavailable', 'down');
    expect(
      errorOf({ status: 'retry-later', reason: 'state_unavailable', detail: 'down', error: failure }),
    ).toBe(failure);
    const waiting = errorOf({ status: 'retry-later', planned: true, ...held });
    expect(waiting).toBeInstanceOf(IdentifierHeldError);
    expect(waiting).toMatchObject({ reason: held.reason, message: 'held', context: held.context });
    const parked = errorOf({ status: 'park', planned: true, ...held, reason: 'duplicate_profile' });
    expect(parked).toBeInstanceOf(ChangeParkedError);
    expect(outcomeOfError(parked)).toMatchObject({
      status: 'park',
      reason: 'duplicate_profile',
      context: held.context,
    });
  });
});
