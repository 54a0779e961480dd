import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A local AWS Secrets Manager endpoint speaking the service's JSON 1.1 protocol, enough for the
 * real SDK client (pointed here with AWS_ENDPOINT_URL_SECRETS_MANAGER): GetSecretValue,
 * CreateSecret, PutSecretValue. npm has no Secrets Manager emulator.
 */
export interface LocalSecretsManager {
  url: string;
  /** Creates or replaces a secret, as a rotation would. */
  putSecret(name: string, value: string | object): void;
  /** How many times GetSecretValue was asked for `name`, found or not: shows what a cache saves. */
  reads(name: string): number;
  stop(): Promise<void>;
}

interface StoredSecret {
  arn: string;
  value: string;
  versionId: string;
  created: number;
}

export async function startLocalSecretsManager(
  options: { port?: number; region?: string; secrets?: Record<string, string | object> } = {},
): Promise<LocalSecretsManager> {
  const region = options.region ?? 'us-east-1';
  const secrets = new Map<string, StoredSecret>();
  const getRequests = new Map<string, number>();

  const putSecret = (name: string, value: string | object) => {
    const suffix = randomUUID().slice(0, 6);
    secrets.set(name, {
      arn: secrets.get(name)?.arn ?? `arn:aws:secretsmanager:${region}:000000000000:secret:${name}-${suffix}`,
      value: typeof value === 'string' ? value : JSON.stringify(value),
      versionId: randomUUID(),
      created: Date.now() / 1000,
    });
  };
  for (const [name, value] of Object.entries(options.secrets ?? {})) putSecret(name, value);

  const find = (id: unknown) =>
    typeof id === 'string' ? (secrets.get(id) ?? [...secrets.values()].find((s) => s.arn === id)) : undefined;

  const actions: Record<string, (input: Record<string, unknown>) => [number, object]> = {
    GetSecretValue(input) {
      getRequests.set(String(input.SecretId), (getRequests.get(String(input.SecretId)) ?? 0) + 1);
      // As AWS: a name holds at most 512 characters, and a longer one is no request at all.
      if (!String(input.SecretId).startsWith('arn:') && String(input.SecretId).length > MAX_NAME_LENGTH) {
        return [
          400,
          { __type: 'ValidationException', message: 'Member must have length less than or equal to 512' },
        ];
      }
      const secret = find(input.SecretId);
      if (!secret) return notFound();
      const name = [...secrets.entries()].find(([, s]) => s === secret)?.[0];
      return [
        200,
        {
          ARN: secret.arn,
          Name: name,
          VersionId: secret.versionId,
          SecretString: secret.value,
          VersionStages: ['AWSCURRENT'],
          CreatedDate: secret.created,
        },
      ];
    },
    CreateSecret(input) {
      const name = String(input.Name);
      if (secrets.has(name)) {
        return [400, { __type: 'ResourceExistsException', message: `The secret ${name} already exists.` }];
      }
      putSecret(name, String(input.SecretString ?? ''));
      const secret = secrets.get(name) as StoredSecret;
      return [200, { ARN: secret.arn, Name: name, VersionId: secret.versionId }];
    },
    PutSecretValue(input) {
      const secret = find(input.SecretId);
      if (!secret) return notFound();
      const name = [...secrets.entries()].find(([, s]) => s === secret)?.[0] as string;
      putSecret(name, String(input.SecretString ?? ''));
      const updated = secrets.get(name) as StoredSecret;
      return [
        200,
        { ARN: updated.arn, Name: name, VersionId: updated.versionId, VersionStages: ['AWSCURRENT'] },
      ];
    },
  };

  const server = createServer((request, response) => void handle(request, response));

  async function handle(request: IncomingMessage, response: ServerResponse) {
    const target = String(request.headers['x-amz-target'] ?? '');
    const action = actions[target.replace(/^secretsmanager\./, '')];
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    let status: number;
    let body: object;
    if (request.method !== 'POST' || !target.startsWith('secretsmanager.') || !action) {
      [status, body] = [
        400,
        { __type: 'UnknownOperationException', message: `Unsupported operation ${target}` },
      ];
    } else {
      try {
        [status, body] = action(JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}'));
      } catch {
        [status, body] = [400, { __type: 'SerializationException', message: 'Malformed request body' }];
      }
    }
    const type = (body as { __type?: string }).__type;
    response.writeHead(status, {
      'content-type': 'application/x-amz-json-1.1',
      'x-amzn-requestid': randomUUID(),
      ...(type ? { 'x-amzn-errortype': type } : {}),
    });
    response.end(JSON.stringify(body));
  }

  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    putSecret,
    reads: (name) => getRequests.get(name) ?? 0,
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

const MAX_NAME_LENGTH = 512;

function notFound(): [number, object] {
  return [
    400,
    { __type: 'ResourceNotFoundException', message: "Secrets Manager can't find the specified secret." },
  ];
}
