import data from './known-domains.json' with { type: 'json' };

/** The misspelt and relay domains the duplicates finder knows; the list and its sources are in the JSON file. */
export interface KnownDomains {
  /** A misspelling, e.g. `gmial.com`, to the provider's domain meant, `gmail.com`. */
  misspeltDomains: Record<string, string>;
  relayDomains: string[];
}

export const KNOWN_DOMAINS: KnownDomains = {
  misspeltDomains: data.misspeltDomains.domains,
  relayDomains: data.relayDomains.domains,
};
