/**
 * The ports: what the core needs of the world, as interfaces; the adapters (lib/adapters/,
 * lib/klaviyo/) implement them, and tests fake them. One file a family of ports.
 */
export type * from './ports/klaviyo.js';
export type * from './ports/queues.js';
export type * from './ports/secrets.js';
export type * from './ports/state.js';
