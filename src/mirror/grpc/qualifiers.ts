import { AccelError } from '../../core/errors.ts';
import type { Digest } from '../../store/digest.ts';

/** What a FetchBlob's qualifiers ask for: a pinned sha256, and headers for each URI (by index). */
export interface FetchQualifiers {
  pinned?: Digest;
  headers: Record<string, string>[];
}

const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$/;
/** Headers that describe the connection or the request framing: the fetch layer sets them, a client never does. */
const REFUSED_HEADERS = new Set([
  'host',
  'connection',
  'content-length',
  'transfer-encoding',
  'te',
  'upgrade',
  'keep-alive',
  'range',
  'if-none-match',
  'if-modified-since',
  'accept-encoding',
]);

/**
 * The Remote Asset API's qualifiers as accel understands them:
 *   checksum.sri                 `sha256-<base64>` (Bazel's sha256 and integrity attributes): pins the content
 *   http_header:NAME             a header sent to every URI's own origin
 *   http_header_url:N:NAME       a header sent to the origin of the N-th URI only
 *   bazel.auth_headers           Bazel's JSON `{url: {name: [values]}}`: headers for those URIs' origins
 *   bazel.canonical_id           accepted and ignored (the store keys content by URL and digest)
 * Anything else is refused (ACCEL_REAPI_BAD_QUALIFIER): a qualifier changes what is fetched, so one this server
 * does not understand must not be dropped silently.
 */
export function parseQualifiers(qualifiers: { name: string; value: string }[], uris: string[]): FetchQualifiers {
  const result: FetchQualifiers = { headers: uris.map(() => ({})) };
  const setHeader = (index: number, name: string, value: string) => {
    checkHeader(name, value);
    const headers = result.headers[index];
    if (headers) headers[name.toLowerCase()] = value;
  };
  for (const { name, value } of qualifiers) {
    if (name === 'checksum.sri') {
      result.pinned = sriSha256(value);
    } else if (name.startsWith('http_header:')) {
      const header = name.slice('http_header:'.length);
      for (let i = 0; i < uris.length; i++) setHeader(i, header, value);
    } else if (name.startsWith('http_header_url:')) {
      const m = /^http_header_url:(\d+):(.+)$/.exec(name);
      const index = Number(m?.[1]);
      if (!m?.[2] || !(index < uris.length)) throw badQualifier(`${name}: no URI with that index`);
      setHeader(index, m[2], value);
    } else if (name === 'bazel.auth_headers') {
      for (const [url, headers] of Object.entries(authHeaders(value))) {
        uris.forEach((uri, i) => {
          if (uri !== url) return;
          for (const [header, values] of Object.entries(headers)) setHeader(i, header, values.join(','));
        });
      }
    } else if (name !== 'bazel.canonical_id') {
      throw badQualifier(`unknown qualifier ${JSON.stringify(name.slice(0, 100))}`);
    }
  }
  return result;
}

/** The sha256 of a Subresource Integrity value (one of its space-separated hashes must be sha256). */
function sriSha256(value: string): Digest {
  for (const part of value.trim().split(/\s+/)) {
    const m = /^sha256-([A-Za-z0-9+/]{43}=)$/.exec(part);
    if (m?.[1]) return Buffer.from(m[1], 'base64').toString('hex') as Digest;
  }
  throw badQualifier(`checksum.sri ${JSON.stringify(value.slice(0, 100))}: accel checks sha256 only (sha256-<base64>)`);
}

function authHeaders(value: string): Record<string, Record<string, string[]>> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw badQualifier('bazel.auth_headers: not JSON');
  }
  const valid =
    typeof parsed === 'object' &&
    parsed !== null &&
    Object.values(parsed).every(
      (h) =>
        typeof h === 'object' &&
        h !== null &&
        Object.values(h).every((v) => Array.isArray(v) && v.every((s) => typeof s === 'string')),
    );
  if (!valid) throw badQualifier('bazel.auth_headers: expected {"URL": {"NAME": ["VALUE"]}}');
  return parsed as Record<string, Record<string, string[]>>;
}

function checkHeader(name: string, value: string): void {
  if (!HEADER_NAME.test(name) || REFUSED_HEADERS.has(name.toLowerCase())) {
    throw badQualifier(`header ${JSON.stringify(name.slice(0, 100))} may not be sent upstream`);
  }
  if (/[\r\n\0]/.test(value) || value.length > 8192) {
    throw badQualifier(`header ${name}: value has line breaks or is longer than 8 KiB`);
  }
}

function badQualifier(message: string): AccelError {
  return new AccelError('ACCEL_REAPI_BAD_QUALIFIER', message, {
    hint: 'accel understands checksum.sri (sha256), http_header:, http_header_url:, bazel.auth_headers, bazel.canonical_id',
  });
}
