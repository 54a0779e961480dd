import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createS3ExportDestination } from '../../lib/adapters/s3-export-destination.js';
import { TransientError } from '../../lib/errors.js';
import { type LocalS3, startLocalS3 } from '../../local/s3.js';
import { useTempDir } from '../support/temp-dir.js';

/**
 * The local S3 endpoint (local/s3.ts) with the real SDK client, pointed at it as the functions
 * are (AWS_ENDPOINT_URL_S3), and the exports adapter against it.
 */
const BUCKET = 'exports-under-test';
const CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' };

/** The AWS CLI, where this machine has it: docs/local-stack.md's way to read an export. */
const awsCli = await promisify(execFile)('aws', ['--version']).then(
  () => true,
  () => false,
);

const tempDir = useTempDir('s3');
let s3: LocalS3;
let client: S3Client;

/** Refuses any request not bound for loopback, before it leaves: this file never reaches AWS. */
function loopbackOnly(s3Client: S3Client): S3Client {
  s3Client.middlewareStack.add(
    (next) => async (args) => {
      const { hostname } = args.request as { hostname?: string };
      if (hostname !== '127.0.0.1') throw new Error(`a request for ${hostname}, not the local S3`);
      return next(args);
    },
    { step: 'finalizeRequest', name: 'loopbackOnly' },
  );
  return s3Client;
}

beforeAll(async () => {
  s3 = await startLocalS3({ buckets: [BUCKET] });
  // Found as the functions find it: AWS_ENDPOINT_URL_S3 (read when requests are made), with no
  // `endpoint` or forcePathStyle in the code. Each test file runs in a process of its own.
  process.env.AWS_ENDPOINT_URL_S3 = s3.url;
  client = loopbackOnly(new S3Client({ region: 'us-east-1', credentials: CREDENTIALS }));
});
afterAll(async () => {
  client?.destroy();
  await s3?.stop();
});

const errorName = (promise: Promise<unknown>) =>
  promise.then(
    () => 'no error',
    (error: unknown) => (error instanceof S3ServiceException ? error.name : String(error)),
  );

describe('the local S3 endpoint with the real S3 client', () => {
  it('puts, heads, gets, lists and deletes objects, keys with slashes and spaces included', async () => {
    const key = 'exports/demo/706405506930370084/req 1.json';
    const put = await client.send(
      new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: '{"a":1}', ContentType: 'application/json' }),
    );
    expect(put.ETag).toBe(`"${createHash('md5').update('{"a":1}').digest('hex')}"`);
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'exports/other.json', Body: '[]' }));

    const head = await client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }));
    expect(head).toMatchObject({ ContentLength: 7, ContentType: 'application/json', ETag: put.ETag });
    const got = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
    expect(await got.Body?.transformToString()).toBe('{"a":1}');

    const listed = await client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'exports/' }));
    expect(listed.Contents?.map((object) => [object.Key, object.Size])).toEqual([
      [key, 7],
      ['exports/other.json', 2],
    ]);

    await client.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: key }));
    expect(await errorName(client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key })))).toBe(
      'NoSuchKey',
    );
    expect(await errorName(client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key })))).toBe(
      'NotFound',
    );
  });

  it('pages a listing with continuation tokens, in key order', async () => {
    const keys = ['page/c', 'page/a', 'page/b', 'page/d', 'page/e'];
    for (const key of keys) await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: key }));
    const seen: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const page = await client.send(
        new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'page/', MaxKeys: 2, ContinuationToken: token }),
      );
      seen.push(...(page.Contents ?? []).map((object) => object.Key ?? ''));
      token = page.NextContinuationToken;
      pages++;
    } while (token);
    expect(seen).toEqual([...keys].sort());
    expect(pages).toBe(3);
  });

  it('answers NoSuchBucket for a bucket it does not have', async () => {
    expect(await errorName(client.send(new PutObjectCommand({ Bucket: 'nope', Key: 'k', Body: 'x' })))).toBe(
      'NoSuchBucket',
    );
  });

  it.runIf(awsCli)(
    'serves the AWS CLI (`aws s3 cp`), both ways',
    async () => {
      const { AWS_PROFILE: _, ...shell } = process.env;
      // No profile or config of this machine's: the local endpoint and dummy credentials only.
      const env = {
        ...shell,
        AWS_ACCESS_KEY_ID: 'local',
        AWS_SECRET_ACCESS_KEY: 'local',
        AWS_REGION: 'us-east-1',
        AWS_CONFIG_FILE: '/dev/null',
        AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
      };
      const run = (args: string[]) =>
        promisify(execFile)('aws', ['--endpoint-url', s3.url, ...args], { env, timeout: 60_000 });
      await client.send(
        new PutObjectCommand({ Bucket: BUCKET, Key: 'cli/read.json', Body: '{"read":true}' }),
      );
      expect((await run(['s3', 'cp', `s3://${BUCKET}/cli/read.json`, '-'])).stdout).toBe('{"read":true}');
      const file = join(tempDir(), 'written.json');
      await writeFile(file, '{"written":true}');
      await run(['s3', 'cp', file, `s3://${BUCKET}/cli/written.json`]);
      const written = s3.objects(BUCKET).find((object) => object.key === 'cli/written.json');
      expect(written?.body.toString('utf8')).toBe('{"written":true}');
    },
    60_000,
  );
});

describe('createS3ExportDestination against the local S3 endpoint', () => {
  it('puts the JSON under its key, encrypted, as JSON, and says where: s3://bucket/key', async () => {
    const destination = createS3ExportDestination(client, BUCKET);
    const json = JSON.stringify({ customer: { id: '706405506930370084' }, audit: [] });
    const { location } = await destination.put('exports/demo/706405506930370084/dr-1.json', json);
    expect(location).toBe(`s3://${BUCKET}/exports/demo/706405506930370084/dr-1.json`);
    const stored = s3
      .objects(BUCKET)
      .find((object) => object.key === 'exports/demo/706405506930370084/dr-1.json');
    expect(stored?.body.toString('utf8')).toBe(json);
    expect(stored?.contentType).toMatch(/^application\/json/);
    expect(stored?.serverSideEncryption).toBe('AES256');
    const got = await client.send(
      new GetObjectCommand({ Bucket: BUCKET, Key: 'exports/demo/706405506930370084/dr-1.json' }),
    );
    expect(JSON.parse((await got.Body?.transformToString()) ?? '')).toEqual(JSON.parse(json));
  });

  it('fails transiently, naming S3, when the bucket cannot take it', async () => {
    const error = await createS3ExportDestination(client, 'no-such-bucket')
      .put('k.json', '{}')
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(TransientError);
    expect(error).toMatchObject({
      reason: 'export_unavailable',
      message: expect.stringMatching(/^S3 PutObject failed/),
    });
  });
});
