/**
 * What `cc.remote` says: shared caches in tiers, read in order, each tier one server or a set of shards. The
 * setting takes
 * - a string: one or more tiers separated by white space (what `ACCEL_CC_REMOTE` can hold);
 * - a list: one tier per entry, each a string or an object.
 * A tier as a string is a URL (`http://edge:8000/cache`), or ccache's shard form
 * `http://cache-*.lan:8000/cache|shards=a,b(2),c`: one shard per name, `*` replaced by it, weight in brackets
 * (default 1). As an object it is `{ "url": URL, "token": T }` or `{ "shards": [URL or { "url": URL, "weight": W }],
 * "token": T }`; a tier without a token uses `cc.remoteToken`.
 */
export interface RemoteShard {
  url: string;
  weight: number;
}

export interface RemoteTier {
  /** One entry: a plain server; more: keys spread over them by rendezvous hashing. */
  shards: RemoteShard[];
  token?: string;
}

export type RemoteShardEntry = string | { url: string; weight?: number };
export type RemoteTierEntry = string | { url?: string; shards?: RemoteShardEntry[]; token?: string };
export type RemoteSetting = string | RemoteTierEntry[];

/** A setting that does not parse: what is wrong, and where (the index of the tier in a list). */
export class RemoteSpecProblem {
  readonly problem: string;
  readonly path: (string | number)[];

  constructor(problem: string, path: (string | number)[] = []) {
    this.problem = problem;
    this.path = path;
  }
}

/** The tiers `value` names (none for an empty string), or the first thing wrong with it. */
export function parseRemoteTiers(value: RemoteSetting): RemoteTier[] | RemoteSpecProblem {
  const entries = typeof value === 'string' ? value.split(/\s+/).filter((s) => s !== '') : value;
  const tiers: RemoteTier[] = [];
  for (const [i, entry] of entries.entries()) {
    const tier = parseTier(entry);
    if (tier instanceof RemoteSpecProblem) {
      return typeof value === 'string' ? tier : new RemoteSpecProblem(tier.problem, [i, ...tier.path]);
    }
    tiers.push(tier);
  }
  const seen = new Set<string>();
  for (const url of tiers.flatMap((t) => t.shards.map((s) => s.url))) {
    if (seen.has(url)) return new RemoteSpecProblem(`${url} is named twice`);
    seen.add(url);
  }
  return tiers;
}

function parseTier(entry: RemoteTierEntry): RemoteTier | RemoteSpecProblem {
  if (typeof entry === 'string') return parseTierString(entry);
  const { url, shards, token } = entry;
  if ((url === undefined) === (shards === undefined)) {
    return new RemoteSpecProblem('a tier object has either "url" or "shards"');
  }
  if (url !== undefined) {
    const problem = checkUrl(url);
    return problem ? new RemoteSpecProblem(problem, ['url']) : withToken({ shards: [{ url, weight: 1 }] }, token);
  }
  if (!shards || shards.length === 0) return new RemoteSpecProblem('"shards" lists at least one server', ['shards']);
  const parsed: RemoteShard[] = [];
  for (const [i, shard] of shards.entries()) {
    const s = typeof shard === 'string' ? { url: shard, weight: 1 } : { url: shard.url, weight: shard.weight ?? 1 };
    const problem = checkUrl(s.url) ?? checkWeight(s.weight);
    if (problem) return new RemoteSpecProblem(problem, ['shards', i]);
    parsed.push(s);
  }
  return withToken({ shards: parsed }, token);
}

function withToken(tier: RemoteTier, token: string | undefined): RemoteTier {
  return token === undefined || token === '' ? tier : { ...tier, token };
}

/** `URL` or `URL|shards=NAME[(WEIGHT)],…` with one `*` in URL (ccache's syntax). */
function parseTierString(text: string): RemoteTier | RemoteSpecProblem {
  const [url = '', ...attributes] = text.split('|');
  if (attributes.length === 0) {
    const problem = checkUrl(url) ?? (url.includes('*') ? `"*" in ${url} needs |shards=NAME,…` : undefined);
    return problem ? new RemoteSpecProblem(problem) : { shards: [{ url, weight: 1 }] };
  }
  const [attribute = '', ...more] = attributes;
  if (more.length > 0 || !attribute.startsWith('shards=')) {
    return new RemoteSpecProblem(`in ${text}: the only attribute after "|" is shards=NAME[(WEIGHT)],…`);
  }
  if ((url.match(/\*/g) ?? []).length !== 1) {
    return new RemoteSpecProblem(`in ${text}: the URL holds one "*", replaced by each shard's name`);
  }
  const shards: RemoteShard[] = [];
  for (const item of attribute.slice('shards='.length).split(',')) {
    const m = /^([A-Za-z0-9._:-]+)(?:\((.*)\))?$/.exec(item);
    if (!m) return new RemoteSpecProblem(`in ${text}: "${item}" is not NAME or NAME(WEIGHT)`);
    const weight = m[2] === undefined ? 1 : Number(m[2]);
    const shard = { url: url.replace('*', m[1] as string), weight };
    const problem = checkWeight(weight, item) ?? checkUrl(shard.url);
    if (problem) return new RemoteSpecProblem(`in ${text}: ${problem}`);
    shards.push(shard);
  }
  return { shards };
}

function checkUrl(url: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `"${url}" is not a URL`;
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return `${url}: only http:// and https://`;
  if (parsed.search || parsed.hash) return `${url}: a base URL has no ?query or #fragment`;
  return undefined;
}

function checkWeight(weight: number, what = String(weight)): string | undefined {
  return Number.isFinite(weight) && weight > 0 ? undefined : `the weight of ${what} is not a number > 0`;
}
