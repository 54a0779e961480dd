/**
 * The tenant the local stack is seeded with. Nothing here is a real credential: the Klaviyo key
 * is only accepted by the local sandbox, and the webhook secret only by the local stack.
 */
export const DEMO_TENANT = {
  tenant: 'demo',
  shopDomain: 'demo-shop.myshopify.com',
  shopifyWebhookSecret: 'shpss_local_demo_webhook_secret',
  /** Standard Webhooks secret for the ERP endpoint (whsec_ + base64 of the key bytes). */
  erpWebhookSecret: `whsec_${Buffer.from('local-demo-erp-signing-key-0001').toString('base64')}`,
  klaviyoPrivateKey: 'pk_sandbox_demo',
  /** Keys the digests and sealed identifiers the state keeps of its customers (lib/privacy). */
  identifierKey: 'local-demo-identifier-key-not-a-secret-0001',
  /** A seeded Klaviyo profile: the Shopify customer the demo changes. */
  customer: {
    externalId: '706405506930370084',
    email: 'ada.before@example.com',
    phoneNumber: '+14155550100',
  },
} as const;

export const DEFAULT_PORTS = {
  http: 3000,
  lambda: 3002,
  sqs: 4566,
  dynamodb: 4567,
  secretsManager: 4568,
  klaviyo: 4569,
  s3: 4570,
} as const;
