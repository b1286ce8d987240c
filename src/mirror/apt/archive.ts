import type { Log } from '../../core/log.ts';
import type { Fetcher } from '../../fetch/fetcher.ts';
import type { Digest } from '../../store/digest.ts';
import { REF_NS } from '../../store/namespaces.ts';
import type { Store } from '../../store/store.ts';
import { offlineNote, type Parent } from '../parent.ts';
import { currentEpoch, type Epoch, epochId, epochIndex, findEpoch, saveEpoch } from './epochs.ts';
import { decompressIndex, isPackagesIndex, parsePackages } from './packages.ts';
import { classifyAptPath, parseRelease } from './release.ts';

/** What the mirror should do with a request under an apt remap. */
export type AptDecision =
  /** Serve this stored blob (a release file of the chosen epoch). */
  | { kind: 'blob'; digest: Digest; status: 'HIT' | 'MISS' | 'REVALIDATED' | 'STALE'; epoch: string }
  /**
   * Serve through the cache as usual, pinned to `pinned` when the epoch or an index knows the content; with a
   * parent mirror, fetched from `viaParent` (the same remap there) instead of the upstreams.
   */
  | { kind: 'wanted'; key: string; candidates: string[]; pinned?: Digest; viaParent?: string[] }
  | { kind: 'error'; status: number; message: string };

export interface AptArchiveOptions {
  store: Store;
  fetcher: Fetcher;
  offline: boolean;
  ttlSeconds: number;
  now: () => number;
  log: Log;
  /** Asked instead of the upstreams (its remap of the same name), its epochs followed: see #refresh. */
  parent?: Parent;
}

/**
 * Debian archives through the mirror: `pool/` and `by-hash/` are immutable and shared; `dists/` is served
 * as epochs. A new InRelease upstream starts a new epoch, which becomes visible only once the index files
 * clients used in the previous one are stored at the hashes it lists, so an update never mixes two states.
 *
 * Below a parent mirror, an epoch here is an epoch of the parent: its release files are the parent's, fetched
 * from one parent epoch (named by the parent's `X-Accel-Epoch`), and its indexes are asked of that same parent
 * epoch (`/r/<remap>@<id>/…`) and checked against this Release's sha256, so neither tier ever pairs one
 * Release with another's indexes, however the two tiers' refreshes interleave.
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
    const plain = { key, candidates: urls(path), ...this.#viaParent(remap, [path]) };
    if (kind.kind === 'other') return { kind: 'wanted', ...plain };
    if (kind.kind === 'pool') return { kind: 'wanted', ...plain, pinned: this.#poolDigest(remap, path) };
    if (kind.kind === 'by-hash') {
      this.#markUsedByHash(remap, kind.suite, kind.sha256);
      return { kind: 'wanted', ...plain, pinned: kind.sha256 };
    }

    const chosen = await this.#epochFor(remap, bases, kind.suite, pinnedId);
    if ('error' in chosen) return chosen.error;
    const { epoch, status } = chosen;
    if (kind.kind === 'release') {
      const digest = epoch.release[kind.name];
      if (!digest) return { kind: 'error', status: 404, message: `epoch ${epoch.id} has no ${kind.name}` };
      return { kind: 'blob', digest, status, epoch: epoch.id };
    }
    const listed = epochIndex(this.#o.store, epoch)?.files.get(kind.path);
    if (!listed) {
      return { kind: 'error', status: 404, message: `${kind.path} is not listed in the Release of epoch ${epoch.id}` };
    }
    if (!epoch.used.includes(kind.path)) {
      epoch.used.push(kind.path);
      saveEpoch(this.#o.store, epoch);
    }
    const sources = this.#indexSources(remap, bases, kind.suite, kind.path, listed.sha256, epoch);
    return {
      kind: 'wanted',
      key: `${key}@${listed.sha256}`,
      pinned: listed.sha256,
      ...(this.#o.parent
        ? { candidates: urls(`dists/${kind.suite}/${kind.path}`), viaParent: sources }
        : { candidates: sources }),
    };
  }

  #viaParent(remap: string, paths: string[]): { viaParent?: string[] } {
    return this.#o.parent ? { viaParent: this.#at(remap, [], paths) } : {};
  }

  /** Where this mirror fetches archive paths: each upstream base in order, or the same remap at the parent. */
  #at(remap: string, bases: string[], paths: string[], parentEpoch?: string): string[] {
    const { parent } = this.#o;
    if (!parent) return paths.flatMap((p) => bases.map((b) => `${b.replace(/\/+$/, '')}/${p}`));
    return paths.map((p) => `${parent.base}/r/${remap}${parentEpoch ? `@${parentEpoch}` : ''}/${p}`);
  }

  /**
   * Where an index of an epoch is fetched (each answer checked against the sha256 its Release lists). Below a
   * parent, from the parent epoch the Release came from first: the parent holds it whatever it serves today.
   */
  #indexSources(remap: string, bases: string[], suite: string, path: string, sha256: Digest, epoch: Epoch): string[] {
    const paths = this.#indexPaths(suite, path, sha256, epoch);
    const fromEpoch = epoch.parentEpoch ? this.#at(remap, bases, [`dists/${suite}/${path}`], epoch.parentEpoch) : [];
    return [...fromEpoch, ...this.#at(remap, bases, paths)];
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
  #indexPaths(suite: string, path: string, sha256: Digest, epoch: Epoch): string[] {
    const info = epochIndex(this.#o.store, epoch);
    const dir = path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : '';
    const byHash = `dists/${suite}/${dir ? `${dir}/` : ''}by-hash/SHA256/${sha256}`;
    const plain = `dists/${suite}/${path}`;
    return info?.byHash ? [byHash, plain] : [plain];
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
    const { parent } = this.#o;
    if (offline) {
      const message = `accel mirror is offline and has no epoch of ${remap}/${suite}${offlineNote(parent)}`;
      return { error: { kind: 'error', status: 504, message } };
    }
    const refreshed = await this.#refresh(remap, bases, suite);
    if (refreshed.epoch) return { epoch: refreshed.epoch, status: refreshed.status };
    const from = parent ? `the parent mirror ${parent.base}` : 'upstream';
    return {
      error: { kind: 'error', status: 502, message: `cannot fetch the Release of ${remap}/${suite} from ${from}` },
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
    // Below a parent, the first release file names the parent epoch; the others are asked of that epoch.
    let parentEpoch: string | undefined;
    const releaseFile = async (name: string) => {
      const got = await this.#fetch(
        `apt ${remap}/${suite}/${name}`,
        this.#at(remap, bases, [`dists/${suite}/${name}`], parentEpoch),
      );
      parentEpoch ??= got?.epoch;
      return got?.digest;
    };
    try {
      const release: Epoch['release'] = {};
      const inRelease = await releaseFile('InRelease');
      if (inRelease) release.InRelease = inRelease;
      // Release and Release.gpg belong to the epoch only if they list exactly what InRelease lists.
      const plain = await releaseFile('Release');
      if (plain && (!inRelease || sameIndexes(store, plain, inRelease))) {
        release.Release = plain;
        const signature = await releaseFile('Release.gpg');
        if (signature) release['Release.gpg'] = signature;
      }
      const main = release.InRelease ?? release.Release;
      if (!main) throw new Error('upstream has neither InRelease nor Release');
      if (current && (current.release.InRelease ?? current.release.Release) === main) {
        current.checkedAt = now();
        if (parentEpoch) current.parentEpoch = parentEpoch;
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
        ...(parentEpoch ? { parentEpoch } : {}),
      };
      // Before anyone sees the new epoch, store the indexes clients used in the old one, at the new hashes.
      const info = epochIndex(store, epoch);
      for (const path of current?.used ?? []) {
        const listed = info?.files.get(path);
        if (!listed || store.has(listed.sha256)) continue;
        const got = await this.#fetch(
          `apt-index ${listed.sha256}`,
          this.#indexSources(remap, bases, suite, path, listed.sha256, epoch),
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

  /**
   * Downloads into the store: the digest and the epoch a parent mirror named for it, or undefined when the
   * upstream has no such file.
   */
  async #fetch(
    key: string,
    candidates: string[],
    expected?: Digest,
  ): Promise<{ digest: Digest; epoch?: string } | undefined> {
    const { download } = this.#o.fetcher.fetch(key, { candidates, expected });
    const info = await download.done;
    const head = await download.head;
    return info && { digest: info.digest, epoch: head.kind === 'body' ? head.epoch : undefined };
  }

  /** What a pool file must hash to, from the Packages indexes of the suites' current epochs. */
  #poolDigest(remap: string, path: string): Digest | undefined {
    const { store } = this.#o;
    const suites = new Set<string>();
    for (const ref of store.refs.list(REF_NS.aptEpoch)) {
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
