import type { Log } from '../../core/log.ts';
import type { Fetcher } from '../../fetch/fetcher.ts';
import type { Digest } from '../../store/digest.ts';
import type { Store } from '../../store/store.ts';
import { currentEpoch, type Epoch, epochId, epochIndex, findEpoch, saveEpoch } from './epochs.ts';
import { decompressIndex, isPackagesIndex, parsePackages } from './packages.ts';
import { classifyAptPath, parseRelease } from './release.ts';

/** What the mirror should do with a request under an apt remap. */
export type AptDecision =
  /** Serve this stored blob (a release file of the chosen epoch). */
  | { kind: 'blob'; digest: Digest; status: 'HIT' | 'MISS' | 'REVALIDATED' | 'STALE' }
  /** Serve through the cache as usual, pinned to `pinned` when the epoch or an index knows the content. */
  | { kind: 'wanted'; key: string; candidates: string[]; pinned?: Digest }
  | { kind: 'error'; status: number; message: string };

export interface AptArchiveOptions {
  store: Store;
  fetcher: Fetcher;
  offline: boolean;
  ttlSeconds: number;
  now: () => number;
  log: Log;
}

/**
 * Debian archives through the mirror: `pool/` and `by-hash/` are immutable and shared; `dists/` is served
 * as epochs. A new InRelease upstream starts a new epoch, which becomes visible only once the index files
 * clients used in the previous one are stored at the hashes it lists, so an update never mixes two states.
 */
export class AptArchive {
  readonly #o: AptArchiveOptions;
  readonly #refreshing = new Map<
    string,
    Promise<{ epoch?: Epoch; status: 'HIT' | 'MISS' | 'REVALIDATED' | 'STALE' }>
  >();
  readonly #packages = new Map<string, Map<string, Digest>>();

  constructor(options: AptArchiveOptions) {
    this.#o = options;
  }

  async decide(remap: string, bases: string[], pinnedId: string | undefined, path: string): Promise<AptDecision> {
    const kind = classifyAptPath(path);
    const urls = (p: string) => bases.map((b) => `${b.replace(/\/+$/, '')}/${p}`);
    const key = `r/${remap}/${path}`;
    if (kind.kind === 'other') return { kind: 'wanted', key, candidates: urls(path) };
    if (kind.kind === 'pool') {
      return { kind: 'wanted', key, candidates: urls(path), pinned: this.#poolDigest(remap, path) };
    }
    if (kind.kind === 'by-hash') {
      this.#markUsedByHash(remap, kind.suite, kind.sha256);
      return { kind: 'wanted', key, candidates: urls(path), pinned: kind.sha256 };
    }

    const chosen = await this.#epochFor(remap, bases, kind.suite, pinnedId);
    if ('error' in chosen) return chosen.error;
    const { epoch, status } = chosen;
    if (kind.kind === 'release') {
      const digest = epoch.release[kind.name];
      if (!digest) return { kind: 'error', status: 404, message: `epoch ${epoch.id} has no ${kind.name}` };
      return { kind: 'blob', digest, status };
    }
    const listed = epochIndex(this.#o.store, epoch)?.files.get(kind.path);
    if (!listed) {
      return { kind: 'error', status: 404, message: `${kind.path} is not listed in the Release of epoch ${epoch.id}` };
    }
    if (!epoch.used.includes(kind.path)) {
      epoch.used.push(kind.path);
      saveEpoch(this.#o.store, epoch);
    }
    return {
      kind: 'wanted',
      key: `${key}@${listed.sha256}`,
      candidates: this.#indexUrls(bases, kind.suite, kind.path, listed.sha256, epoch),
      pinned: listed.sha256,
    };
  }

  /** apt fetches indexes by hash when it can: remember which listed file that was, for the next epoch and for pool checks. */
  #markUsedByHash(remap: string, suite: string, sha256: Digest): void {
    const epoch = currentEpoch(this.#o.store, remap, suite);
    const info = epoch && epochIndex(this.#o.store, epoch);
    if (!epoch || !info) return;
    for (const [path, listed] of info.files) {
      if (listed.sha256 === sha256 && !epoch.used.includes(path)) {
        epoch.used.push(path);
        saveEpoch(this.#o.store, epoch);
        return;
      }
    }
  }

  /** by-hash first where the archive offers it: that URL still holds this epoch's bytes after upstream moved on. */
  #indexUrls(bases: string[], suite: string, path: string, sha256: Digest, epoch: Epoch): string[] {
    const info = epochIndex(this.#o.store, epoch);
    const dir = path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : '';
    const byHash = `dists/${suite}/${dir ? `${dir}/` : ''}by-hash/SHA256/${sha256}`;
    const plain = `dists/${suite}/${path}`;
    const paths = info?.byHash ? [byHash, plain] : [plain];
    return paths.flatMap((p) => bases.map((b) => `${b.replace(/\/+$/, '')}/${p}`));
  }

  async #epochFor(
    remap: string,
    bases: string[],
    suite: string,
    pinnedId: string | undefined,
  ): Promise<{ epoch: Epoch; status: 'HIT' | 'MISS' | 'REVALIDATED' | 'STALE' } | { error: AptDecision }> {
    const { store, offline, now, ttlSeconds } = this.#o;
    if (pinnedId) {
      const epoch = findEpoch(store, remap, pinnedId);
      if (!epoch || epoch.suite !== suite) {
        return { error: { kind: 'error', status: 404, message: `no epoch ${pinnedId} of ${remap}/${suite}` } };
      }
      return { epoch, status: 'HIT' };
    }
    const current = currentEpoch(store, remap, suite);
    if (current && (offline || now() - current.checkedAt < ttlSeconds * 1000)) return { epoch: current, status: 'HIT' };
    if (offline) {
      return {
        error: { kind: 'error', status: 504, message: `accel mirror is offline and has no epoch of ${remap}/${suite}` },
      };
    }
    const refreshed = await this.#refresh(remap, bases, suite);
    if (refreshed.epoch) return { epoch: refreshed.epoch, status: refreshed.status };
    return {
      error: { kind: 'error', status: 502, message: `cannot fetch the Release of ${remap}/${suite} from upstream` },
    };
  }

  /** One refresh per suite at a time; concurrent clients wait for it. */
  #refresh(remap: string, bases: string[], suite: string) {
    const k = `${remap}/${suite}`;
    const running = this.#refreshing.get(k);
    if (running) return running;
    const p = this.#doRefresh(remap, bases, suite).finally(() => this.#refreshing.delete(k));
    this.#refreshing.set(k, p);
    return p;
  }

  async #doRefresh(
    remap: string,
    bases: string[],
    suite: string,
  ): Promise<{ epoch?: Epoch; status: 'HIT' | 'MISS' | 'REVALIDATED' | 'STALE' }> {
    const { store, now, log } = this.#o;
    const current = currentEpoch(store, remap, suite);
    const urls = (name: string) => bases.map((b) => `${b.replace(/\/+$/, '')}/dists/${suite}/${name}`);
    try {
      const release: Epoch['release'] = {};
      const inRelease = await this.#fetch(`apt ${remap}/${suite}/InRelease`, urls('InRelease'));
      if (inRelease) release.InRelease = inRelease;
      // Release and Release.gpg belong to the epoch only if they list exactly what InRelease lists.
      const plain = await this.#fetch(`apt ${remap}/${suite}/Release`, urls('Release'));
      if (plain && (!inRelease || sameIndexes(store, plain, inRelease))) {
        release.Release = plain;
        const signature = await this.#fetch(`apt ${remap}/${suite}/Release.gpg`, urls('Release.gpg'));
        if (signature) release['Release.gpg'] = signature;
      }
      const main = release.InRelease ?? release.Release;
      if (!main) throw new Error('upstream has neither InRelease nor Release');
      if (current && (current.release.InRelease ?? current.release.Release) === main) {
        current.checkedAt = now();
        saveEpoch(store, current);
        return { epoch: current, status: 'REVALIDATED' };
      }
      const created = now();
      const epoch: Epoch = {
        id: epochId(created, main),
        remap,
        suite,
        createdAt: created,
        checkedAt: created,
        release,
        used: [],
      };
      // Before anyone sees the new epoch, store the indexes clients used in the old one, at the new hashes.
      const info = epochIndex(store, epoch);
      for (const path of current?.used ?? []) {
        const listed = info?.files.get(path);
        if (!listed || store.has(listed.sha256)) continue;
        const got = await this.#fetch(
          `apt-index ${listed.sha256}`,
          this.#indexUrls(bases, suite, path, listed.sha256, epoch),
          listed.sha256,
        );
        if (!got) throw new Error(`index ${path} of the new Release is not available`);
        epoch.used.push(path);
      }
      for (const path of current?.used ?? []) if (!epoch.used.includes(path)) epoch.used.push(path);
      saveEpoch(store, epoch);
      log.info(`apt: new epoch ${epoch.id} of ${remap}/${suite}`);
      return { epoch, status: 'MISS' };
    } catch (err) {
      log.warn(
        `apt: keeping ${current ? `epoch ${current.id}` : 'no epoch'} of ${remap}/${suite}: ${(err as Error).message}`,
      );
      return { epoch: current, status: 'STALE' };
    }
  }

  /** Downloads into the store; the digest, or undefined when the upstream has no such file. */
  async #fetch(key: string, candidates: string[], expected?: Digest): Promise<Digest | undefined> {
    const { download } = this.#o.fetcher.fetch(key, { candidates, expected });
    const info = await download.done;
    return info?.digest;
  }

  /** What a pool file must hash to, from the Packages indexes of the suites' current epochs. */
  #poolDigest(remap: string, path: string): Digest | undefined {
    const { store } = this.#o;
    const suites = new Set<string>();
    for (const ref of store.refs.list('apt-epoch')) {
      const e = ref.meta as Epoch;
      if (e.remap === remap) suites.add(e.suite);
    }
    for (const suite of suites) {
      const epoch = currentEpoch(store, remap, suite);
      if (!epoch) continue;
      const digest = this.#packagesOf(epoch).get(path);
      if (digest) return digest;
    }
    return undefined;
  }

  #packagesOf(epoch: Epoch): Map<string, Digest> {
    const cacheKey = `${epoch.id}:${epoch.used.length}`;
    const cached = this.#packages.get(cacheKey);
    if (cached) return cached;
    const { store } = this.#o;
    const all = new Map<string, Digest>();
    const info = epochIndex(store, epoch);
    for (const path of epoch.used) {
      const listed = info?.files.get(path);
      if (!listed || !isPackagesIndex(path)) continue;
      const data = store.read(listed.sha256);
      const text = data && decompressIndex(path, data);
      if (text) for (const [file, digest] of parsePackages(text)) all.set(file, digest);
    }
    this.#packages.set(cacheKey, all);
    return all;
  }
}

function sameIndexes(store: Store, a: Digest, b: Digest): boolean {
  const ra = store.read(a);
  const rb = store.read(b);
  if (!ra || !rb) return false;
  const fa = parseRelease(ra.toString('utf8')).files;
  const fb = parseRelease(rb.toString('utf8')).files;
  if (fa.size !== fb.size) return false;
  for (const [path, f] of fa) if (fb.get(path)?.sha256 !== f.sha256) return false;
  return true;
}
