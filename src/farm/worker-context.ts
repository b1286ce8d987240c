import type { ChildProcess } from 'node:child_process';
import type { Log } from '../core/log.ts';
import type { MtlsClient } from '../net/client.ts';
import type { Identity } from '../net/tls-identity.ts';
import type { Store } from '../store/store.ts';
import type { SandboxUser } from './bubblewrap.ts';
import type { InputMode, InputPool } from './sandbox.ts';
import type { WorkerBlobs } from './worker-blobs.ts';

export interface WorkerOptions {
  store: Store;
  identity: Identity;
  log: Log;
  home: string;
  syncer: string;
  cores: number;
  compilers: string[];
  jobTimeoutMs: number;
  statusHost: string;
  statusPort: number;
  env: NodeJS.ProcessEnv;
  /** Run jobs without the sandbox (trusted clients only); the default refuses to start without one. */
  unsandboxed?: boolean;
  /** The unprivileged user a root worker runs jobs as (default nobody). */
  sandboxUser?: string;
}

/** What a worker counts, reported to the syncer and on its status page. */
export interface WorkerCounters {
  running: number;
  done: number;
  failed: number;
  refused: number;
  blobsFetched: number;
  bytesFetched: number;
}

/** One worker's state, shared by its poll loop, job runner and status server for the worker's lifetime. */
export interface WorkerContext {
  readonly options: WorkerOptions;
  readonly id: string;
  readonly client: MtlsClient;
  readonly counters: WorkerCounters;
  /** The allowed compilers found on this machine's PATH, by name (filled by listen()). */
  readonly compilerPaths: Map<string, string>;
  readonly toolchains: string[];
  /** The compilers running now, killed with their process groups when the worker closes. */
  readonly children: Set<ChildProcess>;
  readonly pool: InputPool;
  readonly blobs: WorkerBlobs;
  /** Set by listen(): the uid jobs run as (undefined: the worker's own), and how inputs reach them. */
  user: SandboxUser | undefined;
  inputMode: InputMode;
  statusUrl: string;
  closing: boolean;
}
