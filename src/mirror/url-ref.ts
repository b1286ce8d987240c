/** What the mirror remembers about a URL, as the `meta` of its ref in namespace `url` (key: the full URL). */
import { REF_NS } from '../store/namespaces.ts';
export interface UrlMeta {
  /** Never revalidated: fetched with a checksum, a versioned archive name, or configured immutable. */
  immutable: boolean;
  /** When the content was fetched or last revalidated (ms since the epoch). */
  fetchedAt: number;
  etag?: string;
  lastModified?: string;
  contentType?: string;
  /**
   * The bytes were checked against a sha256 that a client (`?sha256=`) or a workspace (`mirror prefetch`,
   * `mirror import --urls`) named for this URL: the same URL under the other scheme may be answered with them.
   */
  pinned?: boolean;
}

export const URL_NS = REF_NS.url;

/**
 * An upstream's 404 or 410 for a URL, remembered in namespace `url-missing` (key: the full URL; the ref points
 * at a tiny blob of the answer) so that it is replayed offline and for `mirror.negativeTtl` seconds online:
 * apt asks for InRelease first and falls back to Release on a 404, which offline must still be a 404.
 */
export interface MissingMeta {
  status: 404 | 410;
  at: number;
}

export const MISSING_NS = REF_NS.urlMissing;
