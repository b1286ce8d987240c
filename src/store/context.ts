import type { Statement } from 'better-sqlite3';
import type { Log } from '../core/log.ts';
import type { Db } from './db.ts';
import type { Layout } from './layout.ts';
import type { StoreModes } from './modes.ts';

/** What the store's functions share: the open index, its prepared statements, paths, clock and log. */
export interface StoreContext {
  layout: Layout;
  db: Db;
  statements: BlobStatements;
  now: () => number;
  log: Log;
  modes: StoreModes;
  /** The size limit of a long-running process (limit.ts): told before a new blob appears and after it did. */
  limit?: { admit(size: number): void; written(): void; stop(): void };
}

export interface BlobStatements {
  get: Statement;
  upsert: Statement;
  touch: Statement;
  delete: Statement;
}

export function prepareBlobStatements(db: Db): BlobStatements {
  return {
    get: db.prepare('SELECT digest, size, created_at, last_access, pinned FROM blobs WHERE digest = ?'),
    upsert: db.prepare(
      `INSERT INTO blobs (digest, size, created_at, last_access, pinned) VALUES (@digest, @size, @now, @now, @pinned)
       ON CONFLICT (digest) DO UPDATE SET size = excluded.size, last_access = excluded.last_access,
         pinned = max(pinned, excluded.pinned)`,
    ),
    touch: db.prepare('UPDATE blobs SET last_access = ? WHERE digest = ?'),
    delete: db.prepare('DELETE FROM blobs WHERE digest = ?'),
  };
}
