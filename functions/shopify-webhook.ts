import { createShopifyIntake } from '../lib/composition.js';
import { loadConfig } from '../lib/config.js';
import { webhookHandler } from './http-api.js';

/** POST /webhooks/shopify. Built once per container: configuration errors fail the cold start. */
export const handler = webhookHandler(createShopifyIntake(loadConfig()));
