import type { Statement } from 'better-sqlite3';
import { AccelError } from '../core/errors.ts';
import { type Db, indexWriteError } from './db.ts';
import type { Digest } from './digest.ts';
import { REF_NS } from './namespaces.ts';

/** A named pointer to a blob, in a namespace owned by one feature (`url`, `cc`, `tree`, `conda`, ...). */
export interface Ref {
  ns: string;
  key: string;
  digest: Digest;
  meta: unknown;
  updatedAt: number;
}

interface RefRow {
  ns: string;
  key: string;
  digest: string;
  meta: string | null;
  updated_at: number;
}

/**
 * The action cache shared by two protocols: the mirror's Bazel HTTP cache (`/cache/ac`) and the syncer's
 * Remote Execution API (ActionCache, Execute). Keys are action digests; blobs are encoded ActionResults.
 */
export const CACHE_AC_NS = REF_NS.cacheAc;

const NS_RE = /^[a-z][a-z0-9-]{0,31}$/;

function checkNamespace(ns: string): string {
  if (!NS_RE.test(ns)) {
    throw new AccelError('ACCEL_STORE_BAD_NAMESPACE', `not a ref namespace: '${ns}'`, {
      hint: 'namespaces are lowercase words such as url, cc, tree, conda, apt-epoch',
      exitCode: 2,
    });
  }
  return ns;
}

/** Refs over the index. Prepared once per store: `get` sits on the compile-cache hot path. */
export class Refs {
  readonly #get: Statement;
  readonly #set: Statement;
  readonly #delete: Statement;
  readonly #list: Statement;
  readonly #listNs: Statement;
  readonly #count: Statement;
  readonly #now: () => number;
  readonly #file: string;

  constructor(db: Db, now: () => number) {
    this.#now = now;
    this.#file = db.name;
    this.#get = db.prepare('SELECT ns, key, digest, meta, updated_at FROM refs WHERE ns = ? AND key = ?');
    this.#set = db.prepare(
      `INSERT INTO refs (ns, key, digest, meta, updated_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (ns, key) DO UPDATE SET digest = excluded.digest, meta = excluded.meta, updated_at = excluded.updated_at`,
    );
    this.#delete = db.prepare('DELETE FROM refs WHERE ns = ? AND key = ?');
    this.#list = db.prepare('SELECT ns, key, digest, meta, updated_at FROM refs ORDER BY ns, key');
    this.#listNs = db.prepare('SELECT ns, key, digest, meta, updated_at FROM refs WHERE ns = ? ORDER BY key');
    this.#count = db.prepare('SELECT count(*) FROM refs WHERE ns = ?').pluck();
  }

  get(ns: string, key: string): Ref | undefined {
    const row = this.#get.get(ns, key) as RefRow | undefined;
    return row && toRef(row);
  }

  set(ns: string, key: string, digest: Digest, meta?: unknown): void {
    checkNamespace(ns);
    try {
      this.#set.run(ns, key, digest, meta === undefined ? null : JSON.stringify(meta), this.#now());
    } catch (err) {
      throw indexWriteError(err, this.#file);
    }
  }

  delete(ns: string, key: string): boolean {
    return this.#delete.run(ns, key).changes > 0;
  }

  count(ns: string): number {
    return this.#count.get(ns) as number;
  }

  *list(ns?: string): Generator<Ref> {
    const rows = ns === undefined ? this.#list.iterate() : this.#listNs.iterate(checkNamespace(ns));
    for (const row of rows) yield toRef(row as RefRow);
  }
}

function toRef(row: RefRow): Ref {
  return {
    ns: row.ns,
    key: row.key,
    digest: row.digest as Digest,
    meta: row.meta === null ? null : JSON.parse(row.meta),
    updatedAt: row.updated_at,
  };
}
