/** A tenant's webhook secret (`<prefix><tenant>/webhook`): all the intakes may read. */
export interface WebhookSecret {
  shopifyWebhookSecrets: string[];
  erpWebhookSecrets: string[];
}

/** A tenant's Klaviyo key secret (`<prefix><tenant>/klaviyo`): the worker's and the CLI's. */
export interface KlaviyoKeySecret {
  klaviyoPrivateKey: string;
  /** Keys the digests and sealed identifiers at rest (lib/privacy); without it, derived from the Klaviyo key. */
  identifierKey?: string;
}

/** Both parts of a tenant's secrets, as test fakes and tools that hold both pass them around. */
export type TenantSecret = WebhookSecret & KlaviyoKeySecret;

/** One kind of tenant secret, by tenant, cached. */
export interface TenantSecrets<T = KlaviyoKeySecret> {
  /** `fresh` bypasses the cache, for when a cached value may have been rotated. */
  get(tenant: string, options?: { fresh?: boolean }): Promise<T>;
}

export type WebhookSecrets = TenantSecrets<WebhookSecret>;
