import { COMMANDS } from '../cli/identity-sync.js';
import { DEMO_TENANT } from './local-stack/demo-tenant.js';
import { cliEnvironment, environmentBlock, localStackExtras, shellOf } from './local-stack/env-block.js';
import { localStateDir } from './local-stack/local-state.js';
import { SERVICE_DIR } from './local-stack/offline.js';
import {
  type ExternalKlaviyo,
  externalKlaviyo,
  type LocalPorts,
  localPorts,
  PORT_VARIABLES,
} from './local-stack/settings.js';
import { type LocalStack, startLocalStack } from './local-stack/stack.js';

/**
 * `npm start`: the whole stack on loopback, on fixed ports (see ./local-stack/settings.ts), until
 * Ctrl-C or SIGTERM. Klaviyo is the local sandbox unless KLAVIYO_PRIVATE_KEY or KLAVIYO_BASE_URL
 * is set.
 */
async function main() {
  const ports = localPorts();
  const klaviyo = externalKlaviyo();
  const stateDir = localStateDir(SERVICE_DIR);
  let stack: LocalStack | undefined;
  let stopping = false;

  const shutdown = async (reason: string, exitCode: number) => {
    // A second signal, or one during startup: exit now (serverless-offline is killed on exit).
    if (stopping || !stack) process.exit(exitCode || 130);
    stopping = true;
    console.log(`\n${reason}: stopping the local stack…`);
    await stack.stop();
    console.log('Stopped.');
    process.exit(exitCode);
  };
  process.on('SIGINT', () => shutdown('SIGINT', 0));
  process.on('SIGTERM', () => shutdown('SIGTERM', 0));

  stack = await startLocalStack({
    peers: {
      ports,
      klaviyoPrivateKey: klaviyo?.privateKey,
      klaviyoBaseUrl: klaviyo?.baseUrl,
      stateDir,
    },
    httpPort: ports.http,
    lambdaPort: ports.lambda,
    onOutput: (line) => console.log(`[offline] ${line}`),
    onPollError: (error) => console.error(`[poller] ${error instanceof Error ? error.message : error}`),
  });
  void stack.offline.exited.then(() => {
    if (!stopping) void shutdown('serverless-offline exited', 1);
  });
  console.log(summary(stack, ports, klaviyo, stateDir));
}

function summary(
  stack: LocalStack,
  ports: LocalPorts,
  klaviyo: ExternalKlaviyo | undefined,
  stateDir: string | undefined,
): string {
  const { env, klaviyo: sandbox } = stack.peers;
  const klaviyoKey = shownKey(klaviyo?.privateKey ?? DEMO_TENANT.klaviyoPrivateKey);
  const klaviyoLines = sandbox
    ? [
        `  Klaviyo sandbox    ${sandbox.url}`,
        `    profiles         GET ${sandbox.url}/__sandbox/profiles[?email=|phone_number=|external_id=]`,
        `    one profile      GET|DELETE ${sandbox.url}/__sandbox/profiles/{id}`,
        `    seed a profile   POST ${sandbox.url}/__sandbox/profiles`,
        `    faults           POST|DELETE ${sandbox.url}/__sandbox/faults`,
        `    API requests     GET|DELETE ${sandbox.url}/__sandbox/requests`,
        `    reset            POST ${sandbox.url}/__sandbox/reset`,
      ]
    : [`  Klaviyo            ${klaviyo?.baseUrl}   (no sandbox)`];
  return [
    '',
    'Local stack is up (all on 127.0.0.1):',
    `  Shopify webhook    POST ${stack.offline.webhookUrl}`,
    `  ERP webhook        POST ${stack.offline.webhookUrl.replace(/shopify$/, 'erp')}/{tenant}`,
    `  Lambda endpoint    ${stack.offline.lambdaUrl}/2015-03-31/functions/{name}/invocations`,
    `  SQS (fauxqs)       ${env.AWS_ENDPOINT_URL_SQS}   queue ${env.IDENTITY_CHANGES_QUEUE_URL}`,
    `                     dead-letter queue ${env.DEAD_LETTER_QUEUE_URL}`,
    `  DynamoDB           ${env.AWS_ENDPOINT_URL_DYNAMODB}   table ${env.SYNC_STATE_TABLE}`,
    `  Secrets Manager    ${env.AWS_ENDPOINT_URL_SECRETS_MANAGER}   secrets ${env.TENANT_SECRET_PREFIX}${DEMO_TENANT.tenant}/{webhook,klaviyo}`,
    `  S3                 ${env.AWS_ENDPOINT_URL_S3}   exports bucket ${env.EXPORTS_BUCKET}`,
    ...klaviyoLines,
    '',
    `Demo tenant '${DEMO_TENANT.tenant}':`,
    `  shop domain        ${DEMO_TENANT.shopDomain}`,
    `  Shopify secret     ${DEMO_TENANT.shopifyWebhookSecret}`,
    `  ERP secret         ${DEMO_TENANT.erpWebhookSecret}`,
    `  Klaviyo key        ${klaviyoKey}`,
    `  customer           ${DEMO_TENANT.customer.externalId}${sandbox ? ` (seeded: ${DEMO_TENANT.customer.email})` : ''}`,
    '',
    `For the CLI (identity-sync ${Object.keys(COMMANDS).join(', ')}), paste into another shell:`,
    '',
    environmentBlock(cliEnvironment(env, localStackExtras(stack.offline, sandbox !== undefined)), shellOf()),
    '',
    'Then, for example: identity-sync send --external-id 706405506930370084 --email ada.new@example.com',
    '  (an ERP change; --as shopify or --as eventbridge for Shopify, --topic customers/merge --deleted-id ID)',
    '',
    stateDir
      ? `State (queues, dead letters, table, sandbox profiles) is kept in ${stateDir} across restarts; delete it to start afresh.`
      : 'State (queues, dead letters, table, sandbox profiles) is in memory: it is lost when the stack stops (npm start --persist keeps it in .local/).',
    `Run the demo in another shell: npm run demo${demoVariables(ports)}  (an ERP change: npm run demo:erp)`,
    'Ctrl-C stops everything.',
  ].join('\n');
}

/** The demo finds the stack by the same variables: name those set for this run. */
function demoVariables(ports: LocalPorts): string {
  const moved = Object.entries(PORT_VARIABLES)
    .filter(([, name]) => process.env[name])
    .map(([part, name]) => `${name}=${ports[part as keyof LocalPorts]}`);
  const klaviyo = ['KLAVIYO_PRIVATE_KEY', 'KLAVIYO_BASE_URL'].filter((name) => process.env[name]);
  const needed = [...moved, ...klaviyo.map((name) => `${name}=…`)];
  return needed.length > 0 ? `   (with the same ${needed.join(' ')})` : '';
}

/** A real key is a credential: show only enough to recognise it. */
function shownKey(key: string): string {
  return key === DEMO_TENANT.klaviyoPrivateKey ? key : `${key.slice(0, 3)}…${key.slice(-4)}`;
}

main().catch((error) => {
  const message = error instanceof Error ? error.message : String(error);
  console.error(message);
  if (/in use/.test(message))
    console.error(`Move the stack with ${Object.values(PORT_VARIABLES).join(', ')}.`);
  process.exit(1);
});
