import { randomUUID } from 'node:crypto';
import { copyFileSync, existsSync, linkSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { zstdDecompressSync } from 'node:zlib';
import { makeDirs } from '../../core/dirs.ts';
import { AccelError } from '../../core/errors.ts';
import { homeLayout } from '../../core/home-layout.ts';
import type { Log } from '../../core/log.ts';
import { VERSION } from '../../core/version.ts';
import type { Digest } from '../../store/digest.ts';
import { blobPath } from '../../store/layout.ts';
import { REF_NS } from '../../store/namespaces.ts';
import type { Store } from '../../store/store.ts';
import {
  type ChannelPackage,
  indexRepodata,
  packagesOfIndex,
  type RepodataIndex,
} from '../builder/channel-packages.ts';

/** How an upstream channel is reached: through an accel mirror, or directly with the mirror's guards. */
export interface UpstreamOptions {
  store: Store;
  /** conda.mirror: `<mirror>/<scheme>/<host>/<path>` instead of the URL; empty: the URL itself. */
  mirror: string;
  /** Hosts on private or loopback addresses that may be reached (`--allow`, mirror.allow). */
  allow: readonly string[];
  stallMs: number;
  log: Log;
}

/** What the store remembers of a subdir's repodata: which file answered, and its validators. */
interface RepodataMeta {
  url: string;
  etag?: string;
  lastModified?: string;
  fetched: number;
}

/**
 * A channel that packages come from but that accel does not build into (conda-forge, an organisation's own):
 * `--upstream-channel URL`. Its repodata (`repodata.json.zst` when offered, else `repodata.json`) and packages
 * are fetched into the store, through `conda.mirror` when one is set; the repodata is asked for again each run
 * (conditionally) and the last copy answers when the upstream cannot be reached, so a second build is offline.
 * Packages are checked against the sha256 their repodata gives before they become visible in the store.
 */
export class UpstreamChannel {
  readonly url: string;
  readonly #options: UpstreamOptions;
  readonly #run: string;
  readonly #indexes = new Map<string, Promise<RepodataIndex>>();

  constructor(url: string, options: UpstreamOptions) {
    this.url = UpstreamChannel.check(url);
    this.#options = options;
    this.#run = join(homeLayout(options.store.layout.home).condaPkgs, `${process.pid}-${randomUUID()}`);
  }

  /** The channel URL without a trailing slash; a usage error unless it is http(s). */
  static check(url: string): string {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw badUrl(url);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw badUrl(url);
    return parsed.href.replace(/\/+$/, '');
  }

  /** The subdir's repodata.json bytes, fetched now; an empty index when the channel has no such subdir (404). */
  repodata(subdir: string): Promise<Buffer> {
    return this.#fetchRepodata(subdir);
  }

  /** The subdir's records by name, parsed once per run (every solve, `--skip-existing` and the build tools read it). */
  index(subdir: string): Promise<RepodataIndex> {
    let p = this.#indexes.get(subdir);
    if (!p) {
      p = this.repodata(subdir).then((bytes) => indexRepodata(bytes, `${this.url}/${subdir}/repodata.json`));
      this.#indexes.set(subdir, p);
      p.catch(() => this.#indexes.delete(subdir));
    }
    return p;
  }

  /** The subdir's records with their URLs and where each file goes once fetched. */
  async packages(subdir: string): Promise<ChannelPackage[]> {
    return packagesOfIndex(await this.index(subdir), subdir, {
      channel: this.url,
      url: (f) => `${this.url}/${subdir}/${f}`,
      path: this.placeOf,
    });
  }

  /**
   * Where the package with this digest is put once fetched, named as its repodata names it: in the home beside
   * the store (private, and on the blobs' file system, so a hard link), never in a shared temp directory where
   * another user could put a file there first; in a directory of this run's, which release() removes, so that
   * a link never keeps a blob's bytes after the store's gc let it go.
   */
  readonly placeOf = (sha256: string, filename: string): string => join(this.#run, sha256.slice(0, 16), filename);

  /** Removes the links this run made (call once its builds are done). */
  release(): void {
    rmSync(this.#run, { recursive: true, force: true });
  }

  async #fetchRepodata(subdir: string): Promise<Buffer> {
    const { store, log } = this.#options;
    const key = `${this.url}/${subdir}`;
    const before = store.refs.get(REPODATA_NS, key);
    const meta = before?.meta as RepodataMeta | undefined;
    const stored = before && store.has(before.digest as Digest) ? (before.digest as Digest) : undefined;
    const failures: string[] = [];
    // zstd first, as conda and rattler ask; a channel without it answers 404 and the plain file is next.
    for (const name of ['repodata.json.zst', 'repodata.json']) {
      const url = `${key}/${name}`;
      const conditional =
        stored && meta?.url === url ? { etag: meta.etag, lastModified: meta.lastModified } : undefined;
      let result: Awaited<ReturnType<typeof this.download>>;
      try {
        result = await this.download(url, undefined, conditional);
      } catch (err) {
        // zstd's failure may be the mirror's alone (it never held the .zst): the plain file is asked for next.
        failures.push(`${url}: ${(err as Error).message}`);
        continue;
      }
      if (result.kind === 'status') {
        failures.push(`${url}: HTTP ${result.status}`);
        continue;
      }
      const digest = result.kind === 'not-modified' ? (stored as Digest) : result.digest;
      if (result.kind === 'body') {
        store.refs.set(REPODATA_NS, key, digest, {
          url,
          ...(result.etag ? { etag: result.etag } : {}),
          ...(result.lastModified ? { lastModified: result.lastModified } : {}),
          fetched: Date.now(),
        } satisfies RepodataMeta);
      }
      return decode(readFileSync(blobPath(store.layout, digest)), url);
    }
    if (failures.every((f) => / HTTP 40[34]$/.test(f))) {
      // No repodata at all: a channel without this subdir (many have no linux-aarch64), as conda takes it.
      log.debug(`${key}: no repodata (${failures.join('; ')}): an empty subdir`);
      return Buffer.from('{"packages":{},"packages.conda":{}}');
    }
    if (stored && meta) {
      log.warn(
        `${key}: the upstream cannot be reached (${failures.at(-1)}): using the repodata fetched ${new Date(meta.fetched).toISOString()}`,
      );
      return decode(readFileSync(blobPath(store.layout, stored)), meta.url);
    }
    throw new AccelError('ACCEL_CONDA_UPSTREAM_FETCH', `cannot fetch the repodata of ${key}: ${failures.join('; ')}`, {
      hint: 'the upstream channel (or conda.mirror) must be reachable once; after that its last repodata is used offline',
    });
  }

  /**
   * The package's file, named as its repodata names it (conda's package readers go by the name): from the
   * store when its sha256 is there (offline), else downloaded and checked against that sha256 first.
   */
  async fetchPackage(p: ChannelPackage): Promise<string> {
    const { store } = this.#options;
    const expected = p.sha256 as Digest;
    if (!/^[0-9a-f]{64}$/.test(p.sha256)) {
      throw new AccelError('ACCEL_CONDA_UPSTREAM_SHA256', `${p.url}: the repodata gives no sha256 for ${p.filename}`, {
        hint: 'accel installs upstream packages only when their repodata pins them by sha256',
      });
    }
    if (!(store.has(expected) && store.stat(expected))) {
      const url = p.url as string;
      let result: Awaited<ReturnType<typeof this.download>>;
      try {
        result = await this.download(url, expected, undefined);
      } catch (err) {
        const mismatch = (err as { code?: string }).code === 'ACCEL_STORE_DIGEST_MISMATCH';
        throw new AccelError(
          mismatch ? 'ACCEL_CONDA_UPSTREAM_SHA256' : 'ACCEL_CONDA_UPSTREAM_FETCH',
          `${url}: ${mismatch ? 'does not match the sha256 of its repodata' : 'cannot download'}: ${(err as Error).message}`,
          {
            hint: mismatch
              ? 'the channel (or a mirror) served other bytes than its index names: nothing was stored or installed'
              : 'the package is not in the store yet, so the upstream channel (or conda.mirror) must be reachable once',
            cause: err,
          },
        );
      }
      if (result.kind !== 'body') {
        const status = result.kind === 'status' ? ` (HTTP ${result.status})` : '';
        throw new AccelError('ACCEL_CONDA_UPSTREAM_FETCH', `${url}: cannot download${status}`, {
          hint: 'the channel’s repodata names a package it does not serve',
        });
      }
    }
    const file = p.path;
    if (!existsSync(file)) linkOrCopy(blobPath(store.layout, expected), file);
    return file;
  }

  /** One GET through the store, with the mirror's address guards; the mirror itself is reached wherever it is. */
  private async download(
    url: string,
    expected: Digest | undefined,
    conditional: { etag?: string | undefined; lastModified?: string | undefined } | undefined,
  ): Promise<
    | { kind: 'body'; digest: Digest; etag?: string; lastModified?: string }
    | { kind: 'not-modified' }
    | { kind: 'status'; status: number }
  > {
    const { store, mirror, allow, stallMs } = this.#options;
    const { Download } = await import('../../fetch/download.ts');
    const via = mirrored(url, mirror);
    const download = new Download(store, {
      candidates: [via],
      ...(expected ? { expected } : {}),
      ...(conditional
        ? {
            conditional: {
              ...(conditional.etag ? { etag: conditional.etag } : {}),
              ...(conditional.lastModified ? { lastModified: conditional.lastModified } : {}),
            },
          }
        : {}),
      allow: mirror ? [...allow, new URL(mirror).host] : allow,
      stallMs,
      userAgent: `accel/${VERSION}`,
    });
    const info = await download.done;
    const head = await download.head;
    if (info) {
      return {
        kind: 'body',
        digest: info.digest,
        ...(head.kind === 'body' && head.etag ? { etag: head.etag } : {}),
        ...(head.kind === 'body' && head.lastModified ? { lastModified: head.lastModified } : {}),
      };
    }
    if (head.kind === 'not-modified') return { kind: 'not-modified' };
    return { kind: 'status', status: head.kind === 'status' ? head.status : 502 };
  }
}

/** Store refs: an upstream channel's subdir → the repodata last fetched from it. */
const REPODATA_NS = REF_NS.condaRepodata;

/** Where accel's mirror serves an upstream URL (`<mirror>/<scheme>/<host>/<path>`), or the URL itself. */
export function mirrored(url: string, mirror: string): string {
  if (!mirror) return url;
  const u = new URL(url);
  return `${mirror.replace(/\/+$/, '')}/${u.protocol.replace(/:$/, '')}/${u.host}${u.pathname}${u.search}`;
}

function linkOrCopy(from: string, to: string): void {
  makeDirs(join(to, '..'));
  const temp = `${to}.${process.pid}.tmp`;
  try {
    linkSync(from, temp);
  } catch {
    copyFileSync(from, temp);
  }
  renameSync(temp, to);
}

function decode(bytes: Buffer, url: string): Buffer {
  if (!url.endsWith('.zst')) return bytes;
  try {
    return zstdDecompressSync(bytes);
  } catch (err) {
    throw new AccelError('ACCEL_CONDA_UPSTREAM_FETCH', `${url}: not zstd: ${(err as Error).message}`, {
      hint: 'the channel serves a repodata.json.zst that does not decompress',
      cause: err,
    });
  }
}

function badUrl(url: string): AccelError {
  return new AccelError('ACCEL_USAGE_UPSTREAM_CHANNEL', `not an http(s) channel URL: ${url}`, {
    hint: 'pass the channel’s URL, the one that holds <subdir>/repodata.json, e.g. --upstream-channel http://127.0.0.1:8000/https/…/conda-forge',
    exitCode: 2,
  });
}
