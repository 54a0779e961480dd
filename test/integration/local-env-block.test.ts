import { execFile } from 'node:child_process';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { S3Client } from '@aws-sdk/client-s3';
import { Webhook } from 'standardwebhooks';
import { beforeAll, describe, expect, it } from 'vitest';
import { createDynamoAuditLog } from '../../lib/adapters/dynamo-sync-state.js';
import { createS3ExportDestination } from '../../lib/adapters/s3-export-destination.js';
import { DEMO_TENANT } from '../../scripts/local-stack/demo-tenant.js';
import { cliEnvironment, environmentBlock } from '../../scripts/local-stack/env-block.js';
import { SERVICE_DIR } from '../../scripts/local-stack/offline.js';
import {
  EXPORTS_BUCKET,
  LOCAL_CREDENTIALS,
  TABLE_NAME,
  TENANT_SECRET_PREFIX,
} from '../../scripts/local-stack/peers.js';
import { useLocalPeers } from '../support/local-peers.js';

/**
 * The block `npm start` prints for the CLI: pasted into a shell that has nothing else set (no AWS
 * profile, no region, no tenant), `identity-sync history` and `doctor` talk to the local stack.
 */
const run = promisify(execFile);
/** docs/local-stack.md's way to read an export locally with Node (from the repository, which has the SDK). */
const READ_EXPORT =
  "import { S3Client, GetObjectCommand } from '@aws-sdk/client-s3'; " +
  'const object = await new S3Client({}).send(new GetObjectCommand({ Bucket: process.env.EXPORTS_BUCKET, Key: process.argv[1] })); ' +
  'console.log(await object.Body.transformToString());';
const awsCli = await run('aws', ['--version']).then(
  () => true,
  () => false,
);
const CUSTOMER = DEMO_TENANT.customer.externalId;

const peers = useLocalPeers();
let block: string;

beforeAll(async () => {
  block = environmentBlock(cliEnvironment(peers.env));
  // One decision in the demo tenant's audit trail, for `history` to find.
  await createDynamoAuditLog(peers.dynamodb, TABLE_NAME, 400).record({
    tenant: DEMO_TENANT.tenant,
    externalId: CUSTOMER,
    sourceEventId: 'env-block-test-1',
    outcome: 'applied',
    plan: 'patch',
    profileIds: ['01ENVBLOCKTEST'],
    before: { email: DEMO_TENANT.customer.email },
    after: { email: 'ada.after@example.com' },
    occurredAt: '2026-01-02T03:04:05.000Z',
    decidedAt: '2026-01-02T03:04:06.000Z',
  });
});

/** `identity-sync <args>` in `sh`, after the block, with only PATH inherited. */
function cliAfterTheBlock(...args: string[]) {
  return cliAfter(block, ...args);
}

function cliAfter(block: string, ...args: string[]) {
  const command = [process.execPath, join(SERVICE_DIR, 'bin', 'identity-sync.mjs'), ...args]
    .map((word) => `'${word}'`)
    .join(' ');
  return run('sh', ['-c', `${block}\nexec ${command}`], {
    cwd: SERVICE_DIR,
    env: { PATH: process.env.PATH },
    timeout: 60_000,
  });
}

describe('the environment block for the CLI', () => {
  it("sets the stack's endpoints, dummy credentials, resources and tenant, one export a line", () => {
    const exported = Object.fromEntries(
      block.split('\n').map((line) => {
        const [, name, value] = /^export (\w+)='([^']*)'$/.exec(line) ?? [line, line, ''];
        return [name, value];
      }),
    );
    expect(exported).toEqual({
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
      AWS_ENDPOINT_URL_SQS: new URL(peers.queueUrl).origin,
      AWS_ENDPOINT_URL_DYNAMODB: peers.env.AWS_ENDPOINT_URL_DYNAMODB,
      AWS_ENDPOINT_URL_SECRETS_MANAGER: peers.secrets.url,
      AWS_ENDPOINT_URL_S3: peers.s3.url,
      SYNC_STATE_TABLE: TABLE_NAME,
      EXPORTS_BUCKET,
      IDENTITY_CHANGES_QUEUE_URL: peers.queueUrl,
      DEAD_LETTER_QUEUE_URL: peers.deadLetterQueueUrl,
      SHOPIFY_EVENT_FAILURES_QUEUE_URL: peers.shopifyEventFailuresQueueUrl,
      TENANT_SECRET_PREFIX,
      DEFAULT_TENANT: DEMO_TENANT.tenant,
      KLAVIYO_BASE_URL: peers.klaviyo?.url,
    });
  });

  it('quotes values so that no shell expands them, in sh and in PowerShell', () => {
    const tricky = { A: "it's $HOME `x`" };
    expect(environmentBlock(tricky)).toBe(`export A='it'\\''s $HOME \`x\`'`);
    expect(environmentBlock(tricky, 'powershell')).toBe(`$env:A = 'it''s $HOME \`x\`'`);
  });

  it('adds the webhook URL and the sandbox key when given them', () => {
    const variables = cliEnvironment(peers.env, {
      SHOPIFY_WEBHOOK_URL: 'http://127.0.0.1:3000/webhooks/shopify',
      KLAVIYO_API_KEY: undefined,
    });
    expect(variables.SHOPIFY_WEBHOOK_URL).toBe('http://127.0.0.1:3000/webhooks/shopify');
    expect(variables).not.toHaveProperty('KLAVIYO_API_KEY');
  });

  it("is enough for `history` to read the demo tenant's audit trail", async () => {
    const { stdout } = await cliAfterTheBlock('history', CUSTOMER);
    expect(stdout).toContain(
      `Decisions for customer ${CUSTOMER} of tenant ${DEMO_TENANT.tenant}, newest first:`,
    );
    expect(stdout).toMatch(/applied .*profile 01ENVBLOCKTEST .*a\*\*\*@example\.com.*\[env-block-test-1\]/);
  }, 60_000);

  it("is enough to read an export from the stack's bucket (docs/local-stack.md's one-liner, and the AWS CLI where installed)", async () => {
    const key = `exports/${DEMO_TENANT.tenant}/${CUSTOMER}/env-block-test.json`;
    await createS3ExportDestination(
      new S3Client({ region: 'us-east-1', endpoint: peers.s3.url, credentials: LOCAL_CREDENTIALS }),
      EXPORTS_BUCKET,
    ).put(key, '{"customer":"ada"}');
    const readWithNode = [
      `'${process.execPath}' --input-type=module -e "${READ_EXPORT}" '${key}'`,
      ...(awsCli ? [`aws s3 cp "s3://$EXPORTS_BUCKET/${key}" -`] : []),
    ];
    for (const command of readWithNode) {
      const { stdout } = await run('sh', ['-c', `${block}\n${command}`], {
        cwd: SERVICE_DIR,
        env: { PATH: process.env.PATH },
        timeout: 60_000,
      });
      expect(stdout.trim(), command).toBe('{"customer":"ada"}');
    }
  }, 60_000);

  it('is enough for `doctor` to pass its checks (the webhook skipped: no serverless-offline here)', async () => {
    const { stdout } = await cliAfterTheBlock('doctor');
    expect(stdout).toMatch(/^Checks for tenant demo:\n/);
    expect(stdout.match(/^ {2}ok /gm)).toHaveLength(6);
    expect(stdout).toMatch(/No check failed \(1 skipped\): tenant demo is ready\.\n$/);
  }, 60_000);

  it("is enough for `send` when npm start adds the API's URL and the demo tenant's secrets", async () => {
    const received: { path: string; headers: IncomingHttpHeaders; body: string }[] = [];
    const api = createServer(async (request, response) => {
      const chunks: Buffer[] = [];
      for await (const chunk of request) chunks.push(chunk as Buffer);
      received.push({
        path: String(request.url),
        headers: request.headers,
        body: Buffer.concat(chunks).toString(),
      });
      response
        .writeHead(202, { 'content-type': 'application/json' })
        .end(JSON.stringify({ results: [{ index: 0, status: 'accepted' }] }));
    });
    await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', resolve));
    try {
      const withSend = environmentBlock(
        cliEnvironment(peers.env, {
          IDENTITY_SYNC_API_URL: `http://127.0.0.1:${(api.address() as AddressInfo).port}`,
          ERP_WEBHOOK_SECRET: DEMO_TENANT.erpWebhookSecret,
        }),
      );
      const { stdout } = await cliAfter(
        withSend,
        'send',
        '--external-id',
        CUSTOMER,
        '--email',
        'ada.new@example.com',
      );
      expect(stdout).toMatch(/^HTTP 202\n/);
      expect(received).toHaveLength(1);
      expect(received[0]?.path).toBe(`/webhooks/erp/${DEMO_TENANT.tenant}`);
      const { path, headers, body } = received[0] as (typeof received)[number];
      expect(path).toBeDefined();
      expect(() =>
        new Webhook(DEMO_TENANT.erpWebhookSecret).verify(body, headers as Record<string, string>),
      ).not.toThrow();
    } finally {
      await new Promise((resolve) => api.close(resolve));
    }
  }, 60_000);
});
