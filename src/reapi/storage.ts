import { createHash } from 'node:crypto';
import { AccelError } from '../core/errors.ts';
import type { BlobInfo } from '../store/cas.ts';
import type { Digest as StoreDigest } from '../store/digest.ts';
import { CACHE_AC_NS } from '../store/refs.ts';
import type { Store } from '../store/store.ts';
import { type ActionResult, type Digest, msg } from './proto.ts';

/** The empty blob: present whether or not anyone stored it (the protocol says so). */
export const EMPTY_HASH = createHash('sha256').digest('hex');
/** Action-cache entries larger than this are not decoded to check their blobs (no gRPC message is larger). */
const MAX_DECODED_ENTRY = 8 * 1024 * 1024;

export function isDigestHash(hash: string): boolean {
  return /^[0-9a-f]{64}$/.test(hash);
}

/** A blob upload in progress: bytes streamed into the store, committed only complete and matching. */
export interface BlobUpload {
  write(chunk: Buffer): Promise<void>;
  /** Commits the bytes written under `digest` (or drops them when the store already has it). */
  commit(): Promise<void>;
  abort(): Promise<void>;
}

/**
 * The Remote Execution API's storage over the store, for every protocol that serves it: the syncer's gRPC
 * services, the mirror's gRPC port and the mirror's `/cache/ac` and `/cache/cas` routes. The CAS is the
 * store's blobs; the action cache is the `cache-ac` refs, each naming a blob that holds the entry's bytes.
 *
 * The one rule every protocol gets from here: an action result is a hit only while every blob it names is
 * still in the store (a result whose outputs were evicted would send a client after blobs that are gone).
 * Entries that are not ActionResults (ccache's, in the same layout) are served as they were stored.
 */
export class ReapiStorage {
  readonly store: Store;

  constructor(store: Store) {
    this.store = store;
  }

  has(hash: string): boolean {
    return hash === EMPTY_HASH || (isDigestHash(hash) && this.store.has(hash as StoreDigest));
  }

  /** Puts the empty blob in the store for readers that go to the store itself (a farm worker's inputs). */
  async storeEmpty(): Promise<void> {
    if (!this.store.has(EMPTY_HASH as StoreDigest)) await this.store.putBuffer(Buffer.alloc(0));
  }

  /** The digests of `digests` the store lacks. */
  findMissing(digests: Digest[]): Digest[] {
    return digests.filter((d) => !this.has(d.hash));
  }

  /** A blob as it was hashed; one whose bytes no longer match is quarantined by the store and reads as missing. */
  read(hash: string): Buffer | undefined {
    if (hash === EMPTY_HASH) return Buffer.alloc(0);
    try {
      return this.store.read(hash as StoreDigest);
    } catch (err) {
      if (err instanceof AccelError && err.code === 'ACCEL_STORE_CORRUPT') return undefined;
      throw err;
    }
  }

  /**
   * Streams bytes [offset, end) of a blob to `sink`, a chunk at a time (never the whole blob in memory),
   * verifying the blob as it goes; false when it is not here. A blob whose bytes no longer match is
   * quarantined and the promise rejects after the last chunk, so the caller fails the read instead of
   * ending it normally. `end` undefined: to the blob's end.
   */
  async stream(
    hash: string,
    range: { offset: number; end?: number },
    sink: (chunk: Buffer) => Promise<void>,
  ): Promise<boolean> {
    if (hash === EMPTY_HASH) return true;
    if (!isDigestHash(hash)) return false;
    let at = 0;
    const info = await this.store.copyTo(hash as StoreDigest, async (chunk) => {
      const from = Math.max(range.offset - at, 0);
      const to = Math.min(chunk.length, (range.end ?? Number.POSITIVE_INFINITY) - at);
      at += chunk.length;
      // The store reuses its buffer once the sink settles: what goes on is a copy.
      if (to > from) await sink(Buffer.from(chunk.subarray(from, to)));
    });
    return info !== undefined;
  }

  /** The size of a blob here, or undefined. */
  size(hash: string): number | undefined {
    if (hash === EMPTY_HASH) return 0;
    return isDigestHash(hash) ? this.store.stat(hash as StoreDigest)?.size : undefined;
  }

  /** Stores a blob the client named by digest; a wrong size or hash is ACCEL_REAPI_BAD_BLOB. */
  async put(d: Digest, data: Buffer): Promise<void> {
    if (data.length !== d.size_bytes) {
      throw badBlob(`blob ${d.hash}: ${data.length} bytes, the digest says ${d.size_bytes}`);
    }
    if (this.has(d.hash)) return;
    try {
      await this.store.putBuffer(data, { expected: d.hash as StoreDigest });
    } catch (err) {
      if (err instanceof AccelError && err.code === 'ACCEL_STORE_DIGEST_MISMATCH') {
        throw badBlob(`blob does not hash to ${d.hash}`);
      }
      throw err;
    }
  }

  /** Stores `data` unless the store has it (every put is an fsync); returns its hash. */
  async ensure(data: Buffer): Promise<StoreDigest> {
    const hash = createHash('sha256').update(data).digest('hex') as StoreDigest;
    if (!this.has(hash)) await this.store.putBuffer(data, { expected: hash });
    return hash;
  }

  /** An upload streamed chunk by chunk, so a large blob never sits whole in memory. */
  upload(d: Digest): BlobUpload {
    let writer: Awaited<ReturnType<Store['createWriter']>> | undefined;
    let size = 0;
    return {
      write: async (chunk) => {
        size += chunk.length;
        if (size > d.size_bytes) throw badBlob(`more than the ${d.size_bytes} bytes the digest names`);
        writer ??= await this.store.createWriter();
        if (chunk.length > 0) await writer.write(chunk);
      },
      commit: async () => {
        if (size !== d.size_bytes) {
          await writer?.abort();
          throw badBlob(`${size} bytes, the digest says ${d.size_bytes}`);
        }
        if (this.has(d.hash)) return void (await writer?.abort());
        try {
          await (writer ?? (await this.store.createWriter())).commit({ expected: d.hash as StoreDigest });
        } catch (err) {
          await writer?.abort().catch(() => {});
          if (err instanceof AccelError && err.code === 'ACCEL_STORE_DIGEST_MISMATCH') {
            throw badBlob(`the bytes do not hash to ${d.hash}`);
          }
          throw err;
        }
      },
      abort: async () => {
        await writer?.abort();
      },
    };
  }

  /** The cached result of an action, or undefined: none, undecodable, or naming a blob that is gone. */
  actionResult(actionHash: string): ActionResult | undefined {
    const ref = this.store.refs.get(CACHE_AC_NS, actionHash);
    const data = ref && this.read(ref.digest);
    if (!data) return undefined;
    const result = decodeResult(data);
    return result && this.complete(result) ? result : undefined;
  }

  /**
   * The blob holding an action-cache entry, for protocols that serve its bytes as they are (Bazel's HTTP
   * cache): undefined when there is none or it is an ActionResult naming a blob that is gone.
   */
  actionEntry(actionHash: string): StoreDigest | undefined {
    const ref = this.store.refs.get(CACHE_AC_NS, actionHash);
    if (!ref) return undefined;
    const size = this.store.stat(ref.digest)?.size;
    if (size === undefined) return undefined;
    if (size > MAX_DECODED_ENTRY) return ref.digest;
    const data = this.read(ref.digest);
    if (!data) return undefined;
    const result = decodeResult(data);
    return !result || this.complete(result) ? ref.digest : undefined;
  }

  /** Stores a result; its blobs must be stored first (a reader never finds an entry whose blobs are missing). */
  async putActionResult(actionHash: string, result: ActionResult): Promise<void> {
    this.store.refs.set(CACHE_AC_NS, actionHash, await this.ensure(msg.ActionResult.encode(result)));
  }

  /** Points an action at an entry already in the store (the HTTP cache's PUT, after the body is committed). */
  setActionEntry(actionHash: string, entry: BlobInfo): void {
    this.store.refs.set(CACHE_AC_NS, actionHash, entry.digest);
  }

  /** Every blob the result names is here, the files inside its output trees included. */
  private complete(result: ActionResult): boolean {
    if (!namedBlobs(result).every((hash) => this.has(hash))) return false;
    for (const dir of result.output_directories ?? []) {
      const data = dir.tree_digest && this.read(dir.tree_digest.hash);
      if (!data) return false;
      let tree: ReturnType<typeof msg.Tree.decode>;
      try {
        tree = msg.Tree.decode(data);
      } catch {
        return false;
      }
      for (const node of [tree.root, ...tree.children]) {
        for (const f of node?.files ?? []) if (!f.digest || !this.has(f.digest.hash)) return false;
      }
    }
    return true;
  }
}

/**
 * The entry as an ActionResult, or undefined when the bytes are not one. Protobuf accepts many byte strings,
 * so an entry counts as a result only when every digest it names is a SHA-256 digest.
 */
function decodeResult(data: Buffer): ActionResult | undefined {
  let result: ActionResult;
  try {
    result = msg.ActionResult.decode(data);
  } catch {
    return undefined;
  }
  return namedBlobs(result).every(isDigestHash) ? result : undefined;
}

/** The hashes of the blobs a result names: outputs, output trees, stdout and stderr. */
function namedBlobs(result: ActionResult): string[] {
  const named = [
    ...result.output_files.map((f) => f.digest),
    ...(result.output_directories ?? []).map((d) => d.tree_digest),
    result.stdout_digest,
    result.stderr_digest,
  ];
  return named.flatMap((d) => (d?.hash ? [d.hash] : []));
}

function badBlob(message: string): AccelError {
  return new AccelError('ACCEL_REAPI_BAD_BLOB', message, {
    hint: 'a blob must have exactly the size and SHA-256 its digest names',
  });
}
