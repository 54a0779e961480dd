import { describe, expect, it } from 'vitest';
import {
  type DeadLetter,
  deadLetterSchema,
  letterOfQueued,
  queuedChangeIn,
  readQueuedMessage,
  serializeDeadLetter,
} from '../../lib/dead-letter.js';
import { type IdentityChange, serializeQueuedChange } from '../../lib/identity-change.js';
import { aCustomerMerge } from '../support/factories.js';

const change: IdentityChange = {
  tenant: 'demo',
  source: 'shopify',
  externalId: '706405506930370084',
  email: 'ada.lovelace@example.com',
  phoneNumber: null,
  occurredAt: '2026-06-01T10:00:00.000Z',
  sourceEventId: 'wh-1',
  receivedAt: '2026-06-01T10:00:01.000Z',
};

const parkedChange: DeadLetter = {
  reason: 'identifier_held_by_other_customer',
  detail: 'the email belongs to profile 01H of customer C-9',
  tenant: 'demo',
  source: 'shopify',
  sourceEventId: 'wh-1',
  change,
  context: { profileId: '01P', holderId: '01H' },
  parkedAt: '2026-06-01T10:00:05.000Z',
};

const unusablePayload: DeadLetter = {
  reason: 'invalid_message',
  detail: 'message body is not JSON',
  tenant: undefined,
  source: 'unknown',
  sourceEventId: 'sha256:00',
  payload: '{truncated',
  parkedAt: '2026-06-01T10:00:05.000Z',
};

describe('the dead letter', () => {
  it('goes on the queue as JSON that reads back as the same letter, with the change’s customer named', () => {
    const body = serializeDeadLetter(parkedChange);
    expect(JSON.parse(body)).toEqual({ ...parkedChange, externalId: change.externalId });
    expect(readQueuedMessage(body)).toEqual({
      kind: 'letter',
      letter: { ...parkedChange, externalId: change.externalId },
    });
  });

  it('keeps an intake letter’s own customer, and a letter without tenant or customer', () => {
    const erp: DeadLetter = {
      ...unusablePayload,
      reason: 'invalid_change',
      source: 'erp',
      externalId: 'C-7',
    };
    expect(readQueuedMessage(serializeDeadLetter(erp))).toEqual({ kind: 'letter', letter: erp });
    const body = serializeDeadLetter(unusablePayload);
    expect(JSON.parse(body)).not.toHaveProperty('externalId');
    expect(JSON.parse(body)).not.toHaveProperty('tenant');
    expect(deadLetterSchema.parse(JSON.parse(body))).toMatchObject({
      source: 'unknown',
      payload: '{truncated',
    });
  });

  it.each([
    ['an empty reason', { reason: '' }, 'reason:'],
    ['a parkedAt that is no time', { parkedAt: 'yesterday' }, 'parkedAt:'],
    ['an unknown source', { source: 'crm' }, 'source:'],
    ['a change that is not one', { change: { ...change, phoneNumber: '555' } }, 'change.phoneNumber:'],
  ])('is refused before sending with %s: a bug, named by field', (_, wrong, field) => {
    expect(() => serializeDeadLetter({ ...parkedChange, ...wrong } as DeadLetter)).toThrow(
      `dead letter does not fit its schema: ${field}`,
    );
  });
});

describe('reading a queued message', () => {
  it('reads a change queued before messages were tagged with their kind', () => {
    expect(readQueuedMessage(JSON.stringify(change))).toEqual({ kind: 'queued', queued: change });
  });

  it('tags every kind on the wire, and reads each back as it was', () => {
    const merge = aCustomerMerge();
    expect(JSON.parse(serializeQueuedChange(change))).toEqual({ ...change, kind: 'identityChange' });
    expect(JSON.parse(serializeQueuedChange(merge))).toEqual(merge);
    expect(readQueuedMessage(serializeQueuedChange(change))).toEqual({ kind: 'queued', queued: change });
    expect(readQueuedMessage(serializeQueuedChange(merge))).toEqual({ kind: 'queued', queued: merge });
  });

  it('calls a message of a kind it does not know unreadable, naming the kind', () => {
    const read = readQueuedMessage(JSON.stringify({ ...change, kind: 'customersRedact' }));
    expect(read).toEqual({
      kind: 'unreadable',
      problem: "a queued message of an unknown kind 'customersRedact'",
    });
  });

  it('reads a parked letter with its change (replayable) and one without (an unusable payload)', () => {
    const replayable = readQueuedMessage(JSON.stringify(parkedChange));
    expect(replayable.kind === 'letter' && replayable.letter.change).toEqual(change);
    const unusable = readQueuedMessage(JSON.stringify(unusablePayload));
    expect(unusable).toEqual({ kind: 'letter', letter: { ...unusablePayload, tenant: undefined } });
    expect(unusable.kind === 'letter' && unusable.letter.change).toBeUndefined();
  });

  it.each([
    ['not JSON', '{"tenant":', 'the body is not JSON'],
    ['JSON but no object', '[1,2]', 'the body is JSON, but not an object'],
    ['null', 'null', 'the body is JSON, but not an object'],
    [
      'an object that is no change',
      JSON.stringify({ ...change, occurredAt: 'soon' }),
      'neither a parked letter (no reason) nor an identity change: occurredAt:',
    ],
    [
      'a letter that does not fit',
      JSON.stringify({ ...parkedChange, change: { ...change, tenant: '' } }),
      'a parked letter that does not fit its shape: change.tenant:',
    ],
  ])('calls %s unreadable, saying why', (_, body, problem) => {
    const read = readQueuedMessage(body);
    expect(read.kind).toBe('unreadable');
    expect(read.kind === 'unreadable' && read.problem).toContain(problem);
  });
});

describe('the letter a queued message is parked with', () => {
  const failure = {
    reason: 'retries_exhausted',
    detail: 'still failing after 290 deliveries: Klaviyo answered 503',
    context: { lastReason: 'klaviyo_503' },
    attempts: 290,
    parkedAt: '2026-06-04T10:00:00.000Z',
  };

  it('keeps a change with its reason, last error and deliveries, and replays it as it was', () => {
    const letter = letterOfQueued(change, failure);
    expect(letter).toEqual({
      reason: 'retries_exhausted',
      detail: failure.detail,
      tenant: 'demo',
      source: 'shopify',
      sourceEventId: 'wh-1',
      externalId: change.externalId,
      change,
      context: { lastReason: 'klaviyo_503', attempts: 290 },
      parkedAt: failure.parkedAt,
    });
    expect(queuedChangeIn(readQueuedMessage(serializeDeadLetter(letter)))).toEqual({ queued: change });
  });

  it('keeps a customer merge the same way, in its customer (the deleted one)', () => {
    const merge = aCustomerMerge();
    const letter = letterOfQueued(merge, { ...failure, reason: 'klaviyo_invalid', context: undefined });
    expect(letter).toMatchObject({
      reason: 'klaviyo_invalid',
      detail: failure.detail,
      tenant: merge.tenant,
      source: 'shopify',
      sourceEventId: merge.sourceEventId,
      externalId: merge.deletedExternalId,
      merge,
      context: { attempts: 290 },
    });
    expect(letter).not.toHaveProperty('change');
    expect(queuedChangeIn(readQueuedMessage(serializeDeadLetter(letter)))).toEqual({ queued: merge });
  });
});
