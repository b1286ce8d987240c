import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { errnoCode } from '../../core/errors.ts';

/** One apt source, from deb822 `.sources` or a one-line `deb …` entry. */
export interface AptSource {
  types: string[];
  uris: string[];
  suites: string[];
  components: string[];
  signedBy?: string;
}

function parseDeb822(text: string): AptSource[] {
  const sources: AptSource[] = [];
  for (const stanza of text.split(/\n\s*\n/)) {
    const fields = new Map<string, string>();
    for (const line of stanza.split('\n')) {
      const m = /^([A-Za-z-]+):\s*(.*)$/.exec(line);
      if (m?.[1] && !line.startsWith('#')) fields.set(m[1].toLowerCase(), m[2] ?? '');
    }
    const words = (k: string) => (fields.get(k) ?? '').split(/\s+/).filter(Boolean);
    if (fields.get('enabled') === 'no' || words('uris').length === 0) continue;
    sources.push({
      types: words('types'),
      uris: words('uris'),
      suites: words('suites'),
      components: words('components'),
      signedBy: fields.get('signed-by') || undefined,
    });
  }
  return sources;
}

function parseOneLine(text: string): AptSource[] {
  const sources: AptSource[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*$/, '').trim();
    const m = /^(deb|deb-src)\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)\s*(.*)$/.exec(line);
    if (!m?.[1] || !m[3] || !m[4]) continue;
    const signedBy = /signed-by=(\S+)/.exec(m[2] ?? '')?.[1];
    sources.push({
      types: [m[1]],
      uris: [m[3]],
      suites: [m[4]],
      components: (m[5] ?? '').split(/\s+/).filter(Boolean),
      signedBy,
    });
  }
  return sources;
}

/** The machine's own apt sources (`etc` is /etc/apt; tests pass a temp dir). */
export function readMachineSources(etc = '/etc/apt'): AptSource[] {
  const read = (path: string) => {
    try {
      return readFileSync(path, 'utf8');
    } catch (err) {
      if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return '';
      throw err;
    }
  };
  const sources = parseOneLine(read(join(etc, 'sources.list')));
  let parts: string[] = [];
  try {
    parts = readdirSync(join(etc, 'sources.list.d')).sort();
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw err;
  }
  for (const name of parts) {
    const text = read(join(etc, 'sources.list.d', name));
    if (name.endsWith('.sources')) sources.push(...parseDeb822(text));
    else if (name.endsWith('.list')) sources.push(...parseOneLine(text));
  }
  return sources;
}

/** A remap name for an archive URL: its last path segment (`…/debian-security` → `debian-security`). */
export function remapNameFor(uri: string): string {
  const segments = new URL(uri).pathname.split('/').filter(Boolean);
  return (segments.at(-1) ?? new URL(uri).hostname).replace(/[^A-Za-z0-9._-]/g, '-');
}

/**
 * What `accel mirror config apt` prints: deb822 sources that reach each archive through its remap, and the
 * `mirror.remaps` entries that name the upstreams (taken from the machine's own sources).
 */
export function aptClientConfig(
  sources: AptSource[],
  base: string,
): { sources: string; remaps: Record<string, string[]> } {
  const remaps: Record<string, string[]> = {};
  const stanzas: string[] = [];
  for (const source of sources) {
    const uris = source.uris.map((uri) => {
      const name = remapNameFor(uri);
      const list = remaps[name] ?? [];
      if (!list.includes(uri.replace(/\/+$/, ''))) list.push(uri.replace(/\/+$/, ''));
      remaps[name] = list;
      return `${base.replace(/\/+$/, '')}/r/${name}`;
    });
    stanzas.push(
      [
        `Types: ${source.types.join(' ')}`,
        `URIs: ${uris.join(' ')}`,
        `Suites: ${source.suites.join(' ')}`,
        `Components: ${source.components.join(' ')}`,
        ...(source.signedBy ? [`Signed-By: ${source.signedBy}`] : []),
      ].join('\n'),
    );
  }
  return { sources: stanzas.join('\n\n'), remaps };
}
