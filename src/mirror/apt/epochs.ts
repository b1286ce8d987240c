import type { Digest } from '../../store/digest.ts';
import { REF_NS } from '../../store/namespaces.ts';
import type { Store } from '../../store/store.ts';
import { parseRelease, type ReleaseInfo } from './release.ts';

/**
 * A consistent snapshot of one suite of one archive: the Release file as fetched at one moment, and through
 * it the exact sha256 of every index it lists. Clients see an epoch, never a mix of two.
 */
export interface Epoch {
  id: string;
  remap: string;
  suite: string;
  createdAt: number;
  /** Last time the upstream confirmed this is still its newest Release. */
  checkedAt: number;
  /** The release files of this epoch as stored blobs; InRelease or Release at least. */
  release: Partial<Record<'InRelease' | 'Release' | 'Release.gpg', Digest>>;
  /** Index paths (relative to dists/<suite>/) clients asked for: the next epoch fetches these before it is served. */
  used: string[];
  /** Below a parent mirror: the parent's epoch these release files came from, whose indexes this one asks for. */
  parentEpoch?: string;
}

const EPOCH_NS = REF_NS.aptEpoch;
const PIN_NS = REF_NS.aptPin;

export function epochId(createdAt: number, release: Digest): string {
  return `${new Date(createdAt).toISOString().replace(/[-:]|\.\d+/g, '')}-${release.slice(0, 8)}`;
}

function mainRelease(epoch: Epoch): Digest {
  return (epoch.release.InRelease ?? epoch.release.Release) as Digest;
}

/**
 * Records an epoch and holds what serving it needs (its release files and the indexes clients used), so a
 * size-limited store never evicts half an epoch: pool files come back from the archive, a Release's state does not.
 * Epochs a newer one replaced long ago are let go (see releaseSuperseded), so a mirror that follows a suite for
 * months does not hold every index it ever served.
 */
export function saveEpoch(store: Store, epoch: Epoch): void {
  store.refs.set(EPOCH_NS, epochKey(epoch), mainRelease(epoch), epoch);
  holdEpoch(store, epoch);
  releaseSuperseded(store, epoch.remap, epoch.suite, Math.max(epoch.createdAt, epoch.checkedAt));
}

/** How long an epoch stays held after a newer one replaced it: builds that name it by URL, clients mid-update. */
export const SUPERSEDED_HOLD_MS = 30 * 24 * 3600 * 1000;

function epochKey(epoch: Epoch): string {
  return `${epoch.remap}/${epoch.suite}/${epoch.id}`;
}

function holdEpoch(store: Store, epoch: Epoch): void {
  const indexes = epochIndex(store, epoch)?.files;
  const held = Object.values(epoch.release).filter((d): d is Digest => d !== undefined);
  for (const path of epoch.used) {
    const listed = indexes?.get(path);
    if (listed) held.push(listed.sha256);
  }
  store.hold(`${EPOCH_NS}/${epochKey(epoch)}`, held);
}

/**
 * Lets gc have the indexes of a suite's epochs replaced more than SUPERSEDED_HOLD_MS before `now`, except the
 * pinned one. Such an epoch stays listed and addressable (`/r/NAME@EPOCH`): what the store still has is served,
 * and an index gc took is served only if it can be had again at the hash the epoch's Release lists (else 502).
 */
function releaseSuperseded(store: Store, remap: string, suite: string, now: number): void {
  const epochs = listEpochs(store, remap).filter((e) => e.suite === suite);
  const pinned = pinnedEpochId(store, remap, suite);
  epochs.forEach((epoch, i) => {
    const next = epochs[i + 1];
    if (next && epoch.id !== pinned && now - next.createdAt > SUPERSEDED_HOLD_MS) {
      store.release(`${EPOCH_NS}/${epochKey(epoch)}`);
    }
  });
}

export function listEpochs(store: Store, remap?: string): Epoch[] {
  const epochs: Epoch[] = [];
  for (const ref of store.refs.list(EPOCH_NS)) {
    const epoch = ref.meta as Epoch;
    if (remap === undefined || epoch.remap === remap) epochs.push(epoch);
  }
  return epochs.sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id));
}

export function findEpoch(store: Store, remap: string, id: string): Epoch | undefined {
  return listEpochs(store, remap).find((e) => e.id === id);
}

/** The epoch unpinned clients of a suite see: the pinned one if an operator pinned one, else the newest. */
export function currentEpoch(store: Store, remap: string, suite: string): Epoch | undefined {
  const pin = store.refs.get(PIN_NS, `${remap}/${suite}`);
  if (pin) {
    const pinned = findEpoch(store, remap, (pin.meta as { epoch: string }).epoch);
    if (pinned) return pinned;
  }
  return listEpochs(store, remap)
    .filter((e) => e.suite === suite)
    .at(-1);
}

/** Pins an epoch, and holds it again (an old one may have been let go). */
export function pinEpoch(store: Store, epoch: Epoch): void {
  store.refs.set(PIN_NS, `${epoch.remap}/${epoch.suite}`, mainRelease(epoch), { epoch: epoch.id });
  holdEpoch(store, epoch);
}

export function unpinSuite(store: Store, remap: string, suite: string): boolean {
  return store.refs.delete(PIN_NS, `${remap}/${suite}`);
}

/** Every pinned suite, as `remap/suite`. */
export function listPins(store: Store): string[] {
  return [...store.refs.list(PIN_NS)].map((r) => r.key);
}

export function pinnedEpochId(store: Store, remap: string, suite: string): string | undefined {
  return (store.refs.get(PIN_NS, `${remap}/${suite}`)?.meta as { epoch?: string } | undefined)?.epoch;
}

const parsed = new Map<string, ReleaseInfo>();

/** The index list of an epoch, parsed once per process. */
export function epochIndex(store: Store, epoch: Epoch): ReleaseInfo | undefined {
  const digest = mainRelease(epoch);
  const cached = parsed.get(digest);
  if (cached) return cached;
  const data = store.read(digest);
  if (!data) return undefined;
  const info = parseRelease(data.toString('utf8'));
  parsed.set(digest, info);
  return info;
}
