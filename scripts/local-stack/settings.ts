import { KLAVIYO_PRODUCTION_URL } from '../../lib/config.js';
import { DEFAULT_PORTS, DEMO_TENANT } from './demo-tenant.js';

/**
 * What `npm start` and `npm run demo` both read from the environment, so the demo finds the
 * stack wherever it was moved to.
 */
export type LocalPorts = Record<keyof typeof DEFAULT_PORTS, number>;

/** The variable that moves each part off its default port. */
export const PORT_VARIABLES: Record<keyof typeof DEFAULT_PORTS, string> = {
  http: 'LOCAL_HTTP_PORT',
  lambda: 'LOCAL_LAMBDA_PORT',
  sqs: 'LOCAL_SQS_PORT',
  dynamodb: 'LOCAL_DYNAMODB_PORT',
  secretsManager: 'LOCAL_SECRETS_MANAGER_PORT',
  klaviyo: 'LOCAL_KLAVIYO_PORT',
  s3: 'LOCAL_S3_PORT',
};

export function localPorts(env: NodeJS.ProcessEnv = process.env): LocalPorts {
  const port = (part: keyof LocalPorts) => {
    const name = PORT_VARIABLES[part];
    const value = env[name];
    if (value === undefined || value === '') return DEFAULT_PORTS[part];
    const parsed = Number(value);
    if (!Number.isInteger(parsed) || parsed < 1 || parsed > 65_535) {
      throw new Error(`${name} must be a port number (1-65535), got '${value}'`);
    }
    return parsed;
  };
  return {
    http: port('http'),
    lambda: port('lambda'),
    sqs: port('sqs'),
    dynamodb: port('dynamodb'),
    secretsManager: port('secretsManager'),
    klaviyo: port('klaviyo'),
    s3: port('s3'),
  };
}

/** Klaviyo outside the stack: a real account, or a stand-in of your own. */
export interface ExternalKlaviyo {
  baseUrl: string;
  privateKey: string;
}

/**
 * The sandbox (undefined) unless KLAVIYO_PRIVATE_KEY (a real key) or KLAVIYO_BASE_URL is set;
 * then that base URL (default real Klaviyo) with that key (default the demo tenant's key).
 */
export function externalKlaviyo(env: NodeJS.ProcessEnv = process.env): ExternalKlaviyo | undefined {
  const privateKey = env.KLAVIYO_PRIVATE_KEY || undefined;
  const baseUrl = env.KLAVIYO_BASE_URL || undefined;
  if (!privateKey && !baseUrl) return undefined;
  if (privateKey && !privateKey.startsWith('pk_')) {
    throw new Error('KLAVIYO_PRIVATE_KEY must be a Klaviyo private API key (pk_…)');
  }
  return {
    baseUrl: baseUrl ?? KLAVIYO_PRODUCTION_URL,
    privateKey: privateKey ?? DEMO_TENANT.klaviyoPrivateKey,
  };
}
