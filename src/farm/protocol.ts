/**
 * What travels between the clients (`accel cc`), the syncer and the workers, as JSON over mutual TLS.
 * Paths in a job are the client's absolute paths; a worker maps them into its sandbox and back.
 */

/** A compiler as far as outputs depend on it: name, version, target and a digest of its system headers. */
export interface Toolchain {
  compiler: string;
  version: string;
  machine: string;
  /** sha256 over the compiler's system include dirs and their files' names and sizes. */
  system: string;
}

export function toolchainKey(t: Toolchain): string {
  return `${t.compiler} ${t.version} ${t.machine} ${t.system.slice(0, 16)}`;
}

export interface JobSpec {
  /** The compiler's name (gcc, g++, …): a worker runs its own copy of it from its PATH. */
  compiler: string;
  /** toolchainKey() of the client's compiler; only a worker with the same key takes the job. */
  toolchain: string;
  cwd: string;
  /** The compiler's arguments after @file expansion, with client paths. */
  args: string[];
  /** Locale variables (so diagnostics read exactly as they would locally). */
  env: Record<string, string>;
  /** Milliseconds the job may wait for a worker before the syncer gives it back unstarted. */
  startTimeoutMs: number;
  /** 1 for a compile's first job; more when the client sends it again (stale include tree, syncer restart). */
  submission?: number;
}

export interface JobOutput {
  /** The client's absolute path. */
  path: string;
  digest: string;
  size: number;
  /** Small outputs travel inside the result (base64): two round trips and two fsyncs less per job. */
  data?: string;
}

/** Outputs up to this size are inlined in the result; larger ones move as blobs through the syncer. */
export const INLINE_OUTPUT_MAX = 256 * 1024;

/** What a finished job sends back to the client. */
export type JobResult =
  | {
      status: 'done';
      exitCode: number;
      stdout: string;
      stderr: string;
      outputs: JobOutput[];
      /** The include-tree files the compile read (from its dependency output), with the digests it saw. */
      inputs: [string, string][];
      manifest: string;
      worker: string;
      /** Milliseconds the worker spent: preparing the sandbox, compiling, collecting outputs. */
      timings?: { prepare: number; compile: number; collect: number };
    }
  | { status: 'refused'; code: string; message: string }
  /** An infrastructure failure (worker died, sandbox or transfer problem): the client compiles locally. */
  | { status: 'failed'; reason: string; retry?: boolean }
  | { status: 'not-started' };

/** A job handed to a worker, with the include-tree manifest it must materialize and its lease. */
export interface Assignment {
  id: string;
  spec: JobSpec;
  manifest: string;
  leaseMs: number;
}

/** What a worker tells the syncer each time it asks for work; the syncer's farm status is built from it. */
export interface WorkerReport {
  id: string;
  name: string;
  cores: number;
  running: number;
  done: number;
  failed: number;
  toolchains: string[];
  blobsFetched: number;
  statusUrl: string;
}

/** An include tree: every file under the syncer's roots, by client path. */
export interface TreeManifest {
  roots: string[];
  files: Record<string, string>;
}
