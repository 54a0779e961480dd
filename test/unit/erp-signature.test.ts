import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { signErpRequest } from '../../lib/erp/sign.js';
import {
  type ReceivedDelivery,
  standardWebhookSignature,
  verifyStandardWebhook,
} from '../../lib/erp/signature.js';

/**
 * The Standard Webhooks verifier, against the official vectors (test/fixtures/webhooks/
 * standard-webhooks/test-vectors.json, from the reference libraries' own tests; SOURCES.md there
 * says from where). The npm reference library `standardwebhooks` cross-checks signing and
 * verifying both ways.
 */
interface SignVector {
  id: string;
  secret: string;
  webhook_id: string;
  webhook_timestamp: number;
  payload: string;
  expected_webhook_signature: string;
}

const vectors = JSON.parse(
  readFileSync(new URL('../fixtures/webhooks/standard-webhooks/test-vectors.json', import.meta.url), 'utf8'),
) as { sign_vectors: SignVector[] };

const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const OTHER_SECRET = `whsec_${Buffer.from('another key of 24 bytes!').toString('base64')}`;
const ID = 'msg_p5jXN8AQM9LWM0D4loKWxJek';
const TIMESTAMP = 1_614_265_330;
const at = (seconds: number) => new Date(seconds * 1000);
const body = (text: string) => Buffer.from(text, 'utf8');

/** A delivery of `payload` signed with `secret` at `timestamp`. */
function signed(payload: string, secret = SECRET, timestamp = TIMESTAMP, id = ID): ReceivedDelivery {
  const headers = signErpRequest(payload, secret, { id, now: at(timestamp) });
  return {
    id: headers['webhook-id'],
    timestamp: headers['webhook-timestamp'],
    signature: headers['webhook-signature'],
    body: body(payload),
  };
}

describe('official Standard Webhooks vectors (test/fixtures)', () => {
  const signVectors = vectors.sign_vectors;

  it.each(signVectors.map((vector) => [vector.id, vector] as const))('signs %s as published', (_, vector) => {
    const headers = signErpRequest(vector.payload, vector.secret, {
      id: vector.webhook_id,
      now: at(vector.webhook_timestamp),
    });
    expect(headers).toEqual({
      'webhook-id': vector.webhook_id,
      'webhook-timestamp': String(vector.webhook_timestamp),
      'webhook-signature': vector.expected_webhook_signature,
    });
  });

  it.each(signVectors.map((vector) => [vector.id, vector] as const))(
    'verifies %s at its own time',
    (_, vector) => {
      const delivery = {
        id: vector.webhook_id,
        timestamp: String(vector.webhook_timestamp),
        signature: vector.expected_webhook_signature,
        body: body(vector.payload),
      };
      expect(verifyStandardWebhook(delivery, [vector.secret], at(vector.webhook_timestamp))).toEqual({
        valid: true,
      });
      // The same secret without its prefix is the same key.
      const bare = vector.secret.replace(/^whsec_/, '');
      expect(verifyStandardWebhook(delivery, [bare], at(vector.webhook_timestamp)).valid).toBe(true);
    },
  );

  it('refuses the wrong signature the Rust library tests with', () => {
    const vector = signVectors.find((v) => v.id === 'rust-test_sign') as SignVector;
    const delivery = {
      id: vector.webhook_id,
      timestamp: String(vector.webhook_timestamp),
      signature: 'v1,R3PTzyfHASBKHH98a7yexTwaJ4yNIcGhFQc1yuN+BPU=',
      body: body(vector.payload),
    };
    expect(verifyStandardWebhook(delivery, [vector.secret], at(vector.webhook_timestamp))).toEqual({
      valid: false,
      reason: 'no_match',
    });
  });
});

describe('verifyStandardWebhook', () => {
  const payload = '{"test": 2432232314}';

  it('accepts a delivery signed with the secret', () => {
    expect(verifyStandardWebhook(signed(payload), [SECRET], at(TIMESTAMP))).toEqual({ valid: true });
  });

  it.each([
    ['the body', { body: body('{"test": 2432232315}') }],
    ['the webhook-id', { id: 'msg_other' }],
    ['the timestamp', { timestamp: String(TIMESTAMP + 1) }],
  ])('refuses a delivery whose %s was changed after signing', (_, tampered) => {
    const delivery = { ...signed(payload), ...tampered };
    expect(verifyStandardWebhook(delivery, [SECRET], at(TIMESTAMP))).toEqual({
      valid: false,
      reason: 'no_match',
    });
  });

  it('refuses a delivery signed with another secret', () => {
    expect(verifyStandardWebhook(signed(payload, OTHER_SECRET), [SECRET], at(TIMESTAMP)).valid).toBe(false);
  });

  it('covers the exact bytes, not their text: a body that is not UTF-8 verifies as sent', () => {
    const bytes = Buffer.from([0x7b, 0xff, 0xfe, 0x7d]);
    const timestamp = String(TIMESTAMP);
    const signature = `v1,${standardWebhookSignature(SECRET, { id: ID, timestamp, body: bytes })}`;
    expect(
      verifyStandardWebhook({ id: ID, timestamp, signature, body: bytes }, [SECRET], at(TIMESTAMP)).valid,
    ).toBe(true);
    const asText = Buffer.from(bytes.toString('utf8'), 'utf8');
    expect(
      verifyStandardWebhook({ id: ID, timestamp, signature, body: asText }, [SECRET], at(TIMESTAMP)).valid,
    ).toBe(false);
  });
});

describe('the 5-minute tolerance', () => {
  const delivery = signed('{"a":1}');

  it.each([
    ['300 s after', TIMESTAMP + 300],
    ['300 s before', TIMESTAMP - 300],
  ])('accepts a timestamp %s our clock', (_, now) => {
    expect(verifyStandardWebhook(delivery, [SECRET], at(now))).toEqual({ valid: true });
  });

  it('refuses a timestamp more than 5 minutes old', () => {
    expect(verifyStandardWebhook(delivery, [SECRET], at(TIMESTAMP + 301))).toEqual({
      valid: false,
      reason: 'timestamp_too_old',
    });
  });

  it('refuses a timestamp more than 5 minutes ahead', () => {
    expect(verifyStandardWebhook(delivery, [SECRET], at(TIMESTAMP - 301))).toEqual({
      valid: false,
      reason: 'timestamp_too_new',
    });
  });
});

describe('secret rotation', () => {
  const payload = '{"rotating":true}';

  it('accepts a signature by any of the secrets it knows', () => {
    expect(
      verifyStandardWebhook(signed(payload, OTHER_SECRET), [SECRET, OTHER_SECRET], at(TIMESTAMP)).valid,
    ).toBe(true);
    expect(verifyStandardWebhook(signed(payload, SECRET), [SECRET, OTHER_SECRET], at(TIMESTAMP)).valid).toBe(
      true,
    );
  });

  it('accepts a header that lists the old and the new signature when it knows only one secret', () => {
    const old = signed(payload, SECRET);
    const fresh = signed(payload, OTHER_SECRET);
    const both = { ...old, signature: `${old.signature} ${fresh.signature}` };
    expect(verifyStandardWebhook(both, [OTHER_SECRET], at(TIMESTAMP)).valid).toBe(true);
    expect(verifyStandardWebhook(both, [SECRET], at(TIMESTAMP)).valid).toBe(true);
    const unknown = `whsec_${Buffer.from('a third key, never used').toString('base64')}`;
    expect(verifyStandardWebhook(both, [unknown], at(TIMESTAMP)).valid).toBe(false);
  });

  it('finds the valid entry among decoys and entries of another version', () => {
    const delivery = signed(payload);
    const decoy = 'Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=';
    const signature = `v1,${decoy} v2,${decoy} ${delivery.signature} v1,${decoy}`;
    expect(verifyStandardWebhook({ ...delivery, signature }, [SECRET], at(TIMESTAMP)).valid).toBe(true);
  });

  it('does not take a valid signature under another version label', () => {
    const delivery = signed(payload);
    const signature = delivery.signature?.replace(/^v1,/, 'v1a,');
    expect(verifyStandardWebhook({ ...delivery, signature }, [SECRET], at(TIMESTAMP)).valid).toBe(false);
  });

  it('never matches with no secrets or an empty one', () => {
    expect(verifyStandardWebhook(signed(payload), [], at(TIMESTAMP)).valid).toBe(false);
    const emptyKeySignature = `v1,${standardWebhookSignature('whsec_', { id: ID, timestamp: String(TIMESTAMP), body: body(payload) })}`;
    const delivery = { ...signed(payload), signature: emptyKeySignature };
    expect(verifyStandardWebhook(delivery, ['whsec_'], at(TIMESTAMP)).valid).toBe(false);
  });
});

describe('malformed headers', () => {
  const delivery = signed('{"a":1}');

  it.each([
    ['webhook-id', { id: undefined }],
    ['webhook-timestamp', { timestamp: undefined }],
    ['webhook-signature', { signature: undefined }],
    ['an empty webhook-signature', { signature: '' }],
  ])('refuses a delivery without %s', (_, missing) => {
    expect(verifyStandardWebhook({ ...delivery, ...missing }, [SECRET], at(TIMESTAMP))).toEqual({
      valid: false,
      reason: 'missing_headers',
    });
  });

  it.each(['hello', '1614265330.5', '-1614265330', ' 1614265330', '16142653300000000'])(
    'refuses the timestamp %j',
    (timestamp) => {
      expect(verifyStandardWebhook({ ...delivery, timestamp }, [SECRET], at(TIMESTAMP))).toEqual({
        valid: false,
        reason: 'invalid_timestamp',
      });
    },
  );

  it.each([
    ['a garbage signature', 'v1,dawfeoifkpqwoekfpqoekf'],
    ['a truncated header', delivery.signature?.slice(0, 8)],
    ['an empty v1 entry', 'v1,'],
    ['a signature without version', delivery.signature?.replace(/^v1,/, '')],
    ['a signature joined by a comma', `v1,x,${delivery.signature?.slice(3)}`],
  ])('refuses %s', (_, signature) => {
    expect(verifyStandardWebhook({ ...delivery, signature }, [SECRET], at(TIMESTAMP))).toEqual({
      valid: false,
      reason: 'no_match',
    });
  });
});

describe('the worked example in docs/erp.md', () => {
  it('is signed as the recipe says', () => {
    const doc = readFileSync(resolve(import.meta.dirname, '../../docs/erp.md'), 'utf8');
    const field = (name: string) => new RegExp(`^${name}:\\s+(.+)$`, 'm').exec(doc)?.[1];
    const [secret, id, timestamp, payload] = ['secret', 'webhook-id', 'webhook-timestamp', 'body'].map(field);
    expect(secret && id && timestamp && payload).toBeTruthy();
    const headers = signErpRequest(payload as string, secret as string, {
      id: id as string,
      now: at(Number(timestamp)),
    });
    expect(headers['webhook-signature']).toBe(field('webhook-signature'));
  });
});

describe('agreement with the reference library (standardwebhooks on npm)', () => {
  const payload = '{"externalId":"C-1","email":"ada@example.com","occurredAt":"2026-05-01T12:00:00Z"}';

  it('verifies what the reference library signs', () => {
    const now = new Date();
    const signature = new Webhook(OTHER_SECRET).sign('msg_ref_1', now, payload);
    const delivery = {
      id: 'msg_ref_1',
      timestamp: String(Math.floor(now.getTime() / 1000)),
      signature,
      body: body(payload),
    };
    expect(verifyStandardWebhook(delivery, [OTHER_SECRET], now)).toEqual({ valid: true });
  });

  it('signs what the reference library verifies', () => {
    const headers = signErpRequest(payload, OTHER_SECRET);
    expect(new Webhook(OTHER_SECRET).verify(payload, { ...headers })).toEqual(JSON.parse(payload));
    const forged = { ...headers, 'webhook-id': 'msg_forged' };
    expect(() => new Webhook(OTHER_SECRET).verify(payload, forged)).toThrow();
  });
});
