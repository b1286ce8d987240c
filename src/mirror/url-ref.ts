/** What the mirror remembers about a URL, as the `meta` of its ref in namespace `url` (key: the full URL). */
export interface UrlMeta {
  /** Never revalidated: fetched with a checksum, a versioned archive name, or configured immutable. */
  immutable: boolean;
  /** When the content was fetched or last revalidated (ms since the epoch). */
  fetchedAt: number;
  etag?: string;
  lastModified?: string;
  contentType?: string;
}

export const URL_NS = 'url';
