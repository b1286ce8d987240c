import type { UrlMeta } from './url-ref.ts';

/**
 * Archive and package names that carry a version: such a URL names one immutable artifact, so a cached copy
 * is served forever without asking the upstream (the apt-cacher-ng rule for `.deb`, extended to source
 * tarballs, wheels and conda packages).
 */
const VERSIONED_ARTIFACT =
  /\d[^/]*\.(tar\.(gz|xz|bz2|zst|lz|lzma)|tgz|txz|tbz2?|zip|whl|jar|deb|udeb|rpm|conda|gem|crate|nupkg|dsc|apk)$/i;
/** Debian's by-hash index paths and content-addressed layouts never change either. */
const CONTENT_ADDRESSED = /\/by-hash\/|\/sha256\/[0-9a-f]{64}(\/|$)/i;

export interface FreshnessPolicy {
  /** Seconds before volatile content must be revalidated. */
  ttlSeconds: number;
  /** Extra regular expressions (config `mirror.immutable`) over the upstream URL. */
  immutable: RegExp[];
  /** Seconds an upstream's 404/410 is answered from memory before the upstream is asked again (offline: always). */
  negativeTtlSeconds: number;
}

/** The policy from settings: `mirror.ttl` seconds, `mirror.immutable` patterns, `mirror.negativeTtl` seconds. */
export function freshnessPolicy(ttlSeconds: number, immutable: string[], negativeTtlSeconds = 60): FreshnessPolicy {
  return { ttlSeconds, immutable: immutable.map((pattern) => new RegExp(pattern)), negativeTtlSeconds };
}

export function isImmutableUrl(url: string, policy: FreshnessPolicy): boolean {
  const path = url.replace(/[?#].*$/, '');
  return VERSIONED_ARTIFACT.test(path) || CONTENT_ADDRESSED.test(path) || policy.immutable.some((re) => re.test(url));
}

/** Whether a cached copy may be served without asking the upstream. */
export function isFresh(meta: UrlMeta, now: number, policy: FreshnessPolicy): boolean {
  return meta.immutable || now - meta.fetchedAt < policy.ttlSeconds * 1000;
}
