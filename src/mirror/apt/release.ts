import type { Digest } from '../../store/digest.ts';

/** What an apt `Release`/`InRelease` file says: its fields and the index files it lists by sha256. */
export interface ReleaseInfo {
  fields: Map<string, string>;
  /** Path relative to `dists/<suite>/` → sha256 and size of that index file. */
  files: Map<string, { sha256: Digest; size: number }>;
  byHash: boolean;
}

/**
 * Parses a Release file, or an InRelease (the same text inside an OpenPGP clearsigned message). Signatures
 * are apt's business: the mirror only needs the file list, and clients verify the signature themselves.
 */
export function parseRelease(text: string): ReleaseInfo {
  const body = stripClearsign(text);
  const fields = new Map<string, string>();
  const files = new Map<string, { sha256: Digest; size: number }>();
  let current: string | undefined;
  for (const line of body.split('\n')) {
    if (line.startsWith(' ') || line.startsWith('\t')) {
      if (current?.toLowerCase() === 'sha256') {
        const [sha256, size, path] = line.trim().split(/\s+/);
        if (sha256 && /^[0-9a-f]{64}$/.test(sha256) && path)
          files.set(path, { sha256: sha256 as Digest, size: Number(size) });
      }
      continue;
    }
    const m = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(line);
    if (!m?.[1]) continue;
    current = m[1];
    fields.set(current, m[2] ?? '');
  }
  return { fields, files, byHash: (fields.get('Acquire-By-Hash') ?? '').toLowerCase() === 'yes' };
}

function stripClearsign(text: string): string {
  if (!text.startsWith('-----BEGIN PGP SIGNED MESSAGE-----')) return text;
  const start = text.indexOf('\n\n');
  const end = text.indexOf('\n-----BEGIN PGP SIGNATURE-----');
  return text.slice(start + 2, end < 0 ? undefined : end).replace(/^- /gm, '');
}

/** How apt's paths behave in a cache. */
export type AptPathKind =
  | { kind: 'release'; suite: string; name: 'InRelease' | 'Release' | 'Release.gpg' }
  | { kind: 'index'; suite: string; path: string }
  | { kind: 'by-hash'; suite: string; sha256: Digest }
  | { kind: 'pool'; path: string }
  | { kind: 'other' };

/**
 * Classifies a path relative to an archive root: `dists/<suite>/{InRelease,Release,Release.gpg}` start an
 * epoch; other files under `dists/` are the indexes an epoch lists (mutable upstream, so always served
 * through an epoch); `by-hash` files and `pool/` are immutable.
 */
export function classifyAptPath(path: string): AptPathKind {
  const clean = path.replace(/[?#].*$/, '');
  const dists = /^dists\/([^/]+)\/(.+)$/.exec(clean);
  if (dists?.[1] && dists[2]) {
    const suite = dists[1];
    const rest = dists[2];
    if (rest === 'InRelease' || rest === 'Release' || rest === 'Release.gpg')
      return { kind: 'release', suite, name: rest };
    const hash = /\/by-hash\/SHA256\/([0-9a-f]{64})$/.exec(rest);
    if (hash?.[1]) return { kind: 'by-hash', suite, sha256: hash[1] as Digest };
    return { kind: 'index', suite, path: rest };
  }
  if (clean.startsWith('pool/')) return { kind: 'pool', path: clean };
  return { kind: 'other' };
}
