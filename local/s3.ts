import { createHash, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A local Amazon S3 endpoint on loopback, objects in memory: enough of S3's REST API for the real
 * `@aws-sdk/client-s3` (pointed here with AWS_ENDPOINT_URL_S3, or `endpoint`) and the AWS CLI
 * (`--endpoint-url`): CreateBucket, HeadBucket, PutObject, GetObject, HeadObject, DeleteObject,
 * ListObjectsV2 (prefix, max-keys, continuation; no delimiter). Path-style requests only
 * (`/<bucket>/<key>`): the SDK sends those by itself to an IP endpoint such as 127.0.0.1 (a name
 * like `localhost` needs `forcePathStyle: true`). Signatures are not checked; the body of a
 * streamed upload (`aws-chunked`, as the AWS CLI sends) is unwrapped.
 */
export interface LocalS3 {
  url: string;
  createBucket(name: string): void;
  /** The objects of a bucket, in key order (copies). */
  objects(bucket: string): StoredObject[];
  stop(): Promise<void>;
}

export interface StoredObject {
  key: string;
  body: Buffer;
  contentType: string;
  /** `x-amz-server-side-encryption` as asked for at PutObject (AES256, aws:kms), if it was. */
  serverSideEncryption: string | undefined;
  etag: string;
  lastModified: Date;
}

type Bucket = Map<string, StoredObject>;

interface Answer {
  status: number;
  headers?: Record<string, string>;
  body?: Buffer | string;
}

const MAX_KEYS = 1000;

export async function startLocalS3(options: { port?: number; buckets?: string[] } = {}): Promise<LocalS3> {
  const buckets = new Map<string, Bucket>();
  const createBucket = (name: string) => {
    if (!buckets.has(name)) buckets.set(name, new Map());
  };
  for (const name of options.buckets ?? []) createBucket(name);

  const server = createServer((request, response) => void handle(request, response));

  async function handle(request: IncomingMessage, response: ServerResponse) {
    let answer: Answer;
    try {
      const body = await readBody(request);
      answer = route(request, body);
    } catch (error) {
      answer = s3Error(500, 'InternalError', error instanceof Error ? error.message : String(error));
    }
    const body = request.method === 'HEAD' ? undefined : answer.body;
    response.writeHead(answer.status, {
      'x-amz-request-id': randomUUID(),
      ...(typeof answer.body === 'string' && { 'content-type': 'application/xml' }),
      ...answer.headers,
      ...(answer.body !== undefined && { 'content-length': String(Buffer.byteLength(answer.body)) }),
    });
    response.end(body);
  }

  function route(request: IncomingMessage, body: Buffer): Answer {
    const url = new URL(request.url ?? '/', 'http://s3.invalid');
    const [bucketName = '', ...keyParts] = url.pathname.slice(1).split('/');
    const key = keyParts.map(decodeURIComponent).join('/');
    const method = request.method ?? 'GET';
    if (bucketName === '') return s3Error(400, 'InvalidRequest', 'Only path-style requests are supported.');
    const bucket = buckets.get(bucketName);

    if (key === '') {
      if (method === 'PUT') {
        if (bucket)
          return s3Error(
            409,
            'BucketAlreadyOwnedByYou',
            'Your previous request to create the named bucket succeeded and you already own it.',
          );
        createBucket(bucketName);
        return { status: 200, headers: { location: `/${bucketName}` } };
      }
      if (!bucket) return s3Error(404, 'NoSuchBucket', 'The specified bucket does not exist.');
      if (method === 'HEAD') return { status: 200 };
      if (method === 'GET' && url.searchParams.get('list-type') === '2')
        return list(bucketName, bucket, url.searchParams);
      return s3Error(501, 'NotImplemented', `${method} on a bucket is not supported by the local S3.`);
    }

    if (!bucket) return s3Error(404, 'NoSuchBucket', 'The specified bucket does not exist.');
    if (method === 'PUT') {
      if (request.headers['x-amz-copy-source'])
        return s3Error(501, 'NotImplemented', 'CopyObject is not supported by the local S3.');
      const content = isAwsChunked(request) ? unchunk(body) : body;
      const etag = `"${createHash('md5').update(content).digest('hex')}"`;
      const sse = header(request, 'x-amz-server-side-encryption');
      bucket.set(key, {
        key,
        body: content,
        contentType: header(request, 'content-type') ?? 'binary/octet-stream',
        serverSideEncryption: sse,
        etag,
        lastModified: new Date(Math.floor(Date.now() / 1000) * 1000),
      });
      return { status: 200, headers: { etag, ...(sse && { 'x-amz-server-side-encryption': sse }) } };
    }
    if (method === 'DELETE') {
      bucket.delete(key);
      return { status: 204 };
    }
    if (method === 'GET' || method === 'HEAD') {
      const object = bucket.get(key);
      if (!object) {
        return method === 'HEAD'
          ? { status: 404 }
          : s3Error(404, 'NoSuchKey', 'The specified key does not exist.', `<Key>${xml(key)}</Key>`);
      }
      return {
        status: 200,
        headers: {
          'content-type': object.contentType,
          etag: object.etag,
          'last-modified': object.lastModified.toUTCString(),
          ...(object.serverSideEncryption && { 'x-amz-server-side-encryption': object.serverSideEncryption }),
        },
        body: object.body,
      };
    }
    return s3Error(405, 'MethodNotAllowed', `${method} is not allowed on an object.`);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    createBucket,
    objects: (name) =>
      [...(buckets.get(name)?.values() ?? [])]
        .sort((a, b) => compareKeys(a.key, b.key))
        .map((object) => ({ ...object, body: Buffer.from(object.body) })),
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** ListObjectsV2: keys in UTF-8 byte order; the continuation token is the last key listed. */
function list(name: string, bucket: Bucket, query: URLSearchParams): Answer {
  const prefix = query.get('prefix') ?? '';
  if (query.get('delimiter'))
    return s3Error(501, 'NotImplemented', 'ListObjectsV2 with a delimiter is not supported by the local S3.');
  const maxKeys = Math.min(MAX_KEYS, Math.max(0, Number(query.get('max-keys') ?? MAX_KEYS) || 0));
  const token = query.get('continuation-token');
  const after = token ? Buffer.from(token, 'base64url').toString('utf8') : (query.get('start-after') ?? '');
  const matching = [...bucket.values()]
    .filter((object) => object.key.startsWith(prefix) && compareKeys(object.key, after) > 0)
    .sort((a, b) => compareKeys(a.key, b.key));
  const page = matching.slice(0, maxKeys);
  const truncated = matching.length > page.length;
  const last = page.at(-1)?.key;
  const contents = page
    .map(
      (object) =>
        `<Contents><Key>${xml(object.key)}</Key><LastModified>${object.lastModified.toISOString()}</LastModified>` +
        `<ETag>${xml(object.etag)}</ETag><Size>${object.body.length}</Size><StorageClass>STANDARD</StorageClass></Contents>`,
    )
    .join('');
  const body =
    '<?xml version="1.0" encoding="UTF-8"?>' +
    '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">' +
    `<Name>${xml(name)}</Name><Prefix>${xml(prefix)}</Prefix><KeyCount>${page.length}</KeyCount>` +
    `<MaxKeys>${maxKeys}</MaxKeys><IsTruncated>${truncated}</IsTruncated>${contents}` +
    (token ? `<ContinuationToken>${xml(token)}</ContinuationToken>` : '') +
    (truncated && last !== undefined
      ? `<NextContinuationToken>${Buffer.from(last, 'utf8').toString('base64url')}</NextContinuationToken>`
      : '') +
    '</ListBucketResult>';
  return { status: 200, body };
}

const compareKeys = (a: string, b: string) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));

function s3Error(status: number, code: string, message: string, extra = ''): Answer {
  const body = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${xml(message)}</Message>${extra}<RequestId>${randomUUID()}</RequestId></Error>`;
  return { status, body };
}

const xml = (text: string) =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

const header = (request: IncomingMessage, name: string): string | undefined => {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
};

/** A streamed upload: `Content-Encoding: aws-chunked` or a STREAMING-… payload hash. */
const isAwsChunked = (request: IncomingMessage) =>
  /aws-chunked/.test(header(request, 'content-encoding') ?? '') ||
  (header(request, 'x-amz-content-sha256') ?? '').startsWith('STREAMING-');

/** The payload of an aws-chunked body: `<hex size>[;chunk-signature=…]\r\n<bytes>\r\n`…, ending with a 0-size chunk (and trailers). */
function unchunk(body: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const lineEnd = body.indexOf('\r\n', at);
    if (lineEnd < 0) throw new Error('malformed aws-chunked body');
    const size = Number.parseInt(body.subarray(at, lineEnd).toString('latin1').split(';')[0] ?? '', 16);
    if (!Number.isFinite(size)) throw new Error('malformed aws-chunked body');
    if (size === 0) return Buffer.concat(parts);
    parts.push(body.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
}

async function readBody(request: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
