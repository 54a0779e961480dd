import type { S3Client } from '@aws-sdk/client-s3';
import { TransientError } from '../errors.js';
import type { ExportDestination } from '../ports.js';

/**
 * Exports of a customer's data (Shopify's `customers/data_request`) as JSON objects in the stack's
 * private exports bucket (infra/exports.yml: no public access, TLS only, expired after
 * EXPORT_RETENTION_DAYS). Each object asks for S3-managed encryption itself too, so it is
 * encrypted at rest whatever the bucket's default. A failed put is transient: the request is
 * tried again later, and a put of the same key replaces the object. The S3 client is imported at
 * the first put, never at load: the worker's bundle leaves it out (serverless.yml, `external`).
 */
export function createS3ExportDestination(client: S3Client, bucket: string): ExportDestination {
  return {
    async put(key, json) {
      try {
        const { PutObjectCommand } = await import('@aws-sdk/client-s3');
        await client.send(
          new PutObjectCommand({
            Bucket: bucket,
            Key: key,
            Body: json,
            ContentType: 'application/json; charset=utf-8',
            ServerSideEncryption: 'AES256',
          }),
        );
      } catch (error) {
        throw new TransientError('export_unavailable', `S3 PutObject failed: ${(error as Error).message}`, {
          cause: error,
        });
      }
      return { location: `s3://${bucket}/${key}` };
    },
  };
}
