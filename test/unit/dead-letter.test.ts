import { describe, expect, it } from 'vitest';
import {
  type DeadLetter,
  deadLetterSchema,
  readQueuedMessage,
  serializeDeadLetter,
} from '../../lib/dead-letter.js';
import type { IdentityChange } from '../../lib/identity-change.js';

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
  it('reads a plain change', () => {
    expect(readQueuedMessage(JSON.stringify(change))).toEqual({ kind: 'queued', queued: change });
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
