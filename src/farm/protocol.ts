import * as z from 'zod/mini';

/**
 * What travels between the clients (`accel cc`), the syncer and the workers, as JSON over mutual TLS: one
 * schema per message, which both ends use. Every body that arrives is parsed with its schema, never cast: a
 * peer holding a certificate of the installation is still not trusted to send well-formed messages.
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

/** Outputs up to this size are inlined in the result; larger ones move as blobs through the syncer. */
export const INLINE_OUTPUT_MAX = 256 * 1024;
/** All inline outputs of one result together: past it, outputs move as blobs (a tree of many small files). */
export const INLINE_TOTAL_MAX = 8 * 1024 * 1024;
/** Files, links and directories one job may return (an REAPI tree artifact can hold many). */
const MAX_OUTPUTS = 100_000;

const digest = z.string().check(z.regex(/^[0-9a-f]{64}$/, 'expected a sha256 digest (64 hex digits)'));
/** Bounds on what one message may hold, so a body cannot make a peer allocate without limit. */
const text = z.string().check(z.maxLength(1 << 20));
const path = z.string().check(z.minLength(1), z.maxLength(4096));
const count = z.number().check(z.int(), z.gte(0));

export const JobSpecSchema = z.strictObject({
  /** The compiler's name (gcc, g++, …): a worker runs its own copy of it from its PATH. */
  compiler: z.string().check(z.minLength(1), z.maxLength(255)),
  /** toolchainKey() of the client's compiler; only a worker with the same key takes the job. */
  toolchain: z.string().check(z.maxLength(1024)),
  cwd: path,
  /** The compiler's arguments after @file expansion, with client paths. */
  args: z.array(z.string().check(z.maxLength(64 * 1024))).check(z.maxLength(100_000)),
  /** Locale variables (so diagnostics read exactly as they would locally). */
  env: z.record(z.string(), z.string().check(z.maxLength(4096))),
  /** Milliseconds the job may wait for a worker before the syncer gives it back unstarted. */
  startTimeoutMs: z.number().check(z.gt(0), z.lte(24 * 3600 * 1000)),
  /** 1 for a compile's first job; more when the client sends it again (stale include tree, syncer restart). */
  submission: z.optional(count),
  /**
   * `command`: an REAPI action under the syncer's `reapiRun: any` — `compiler` is the program as the action
   * names it (run in the sandbox from the job's directory or PATH), `args` go unchecked and unmapped, `env` is
   * the action's whole environment. Only the syncer's REAPI side sets it; `POST /jobs` refuses it.
   */
  run: z.optional(z.literal('command')),
  /** The outputs an REAPI action declares (client paths): files (or either, under output_paths) and directories. */
  declared: z.optional(
    z.strictObject({
      files: z.array(path).check(z.maxLength(100_000)),
      dirs: z.array(path).check(z.maxLength(100_000)),
    }),
  ),
});
export type JobSpec = z.infer<typeof JobSpecSchema>;

const JobOutputSchema = z.strictObject({
  /** The client's absolute path. */
  path,
  digest,
  size: count,
  /** Small outputs travel inside the result (base64): two round trips and two fsyncs less per job. */
  data: z.optional(z.string().check(z.maxLength(((INLINE_OUTPUT_MAX + 2) / 3) * 4 + 4))),
  /** Set when the file is executable (a linked program): an REAPI result says so. */
  executable: z.optional(z.boolean()),
});
export type JobOutput = z.infer<typeof JobOutputSchema>;

/** What a finished job sends back to the client. */
export const JobResultSchema = z.discriminatedUnion('status', [
  z.strictObject({
    status: z.literal('done'),
    exitCode: z.number().check(z.int()),
    stdout: text,
    stderr: text,
    outputs: z.array(JobOutputSchema).check(z.maxLength(MAX_OUTPUTS)),
    /** Symbolic links among the declared outputs or inside declared directories: path and target as read. */
    links: z.optional(z.array(z.strictObject({ path, target: path })).check(z.maxLength(MAX_OUTPUTS))),
    /** The directories inside declared output directories (and those directories), empty ones included. */
    dirs: z.optional(z.array(path).check(z.maxLength(MAX_OUTPUTS))),
    /** The include-tree files the compile read (from its dependency output), with the digests it saw. */
    inputs: z.array(z.tuple([path, z.string().check(z.maxLength(64))])).check(z.maxLength(1_000_000)),
    manifest: digest,
    worker: z.string().check(z.maxLength(255)),
    /** Milliseconds the worker spent: preparing the sandbox, compiling, collecting outputs. */
    timings: z.optional(z.strictObject({ prepare: z.number(), compile: z.number(), collect: z.number() })),
  }),
  z.strictObject({ status: z.literal('refused'), code: z.string(), message: text }),
  /** An infrastructure failure (worker died, sandbox or transfer problem): the client compiles locally. */
  z.strictObject({ status: z.literal('failed'), reason: text, retry: z.optional(z.boolean()) }),
  z.strictObject({ status: z.literal('not-started') }),
]);
export type JobResult = z.infer<typeof JobResultSchema>;

/** A job handed to a worker, with the include-tree manifest it must materialize and its lease. */
export const AssignmentSchema = z.strictObject({
  id: z.string().check(z.minLength(1), z.maxLength(255)),
  spec: JobSpecSchema,
  manifest: digest,
  /** The manifest itself, when the job brought its own input tree (an REAPI action): no round trip to fetch it. */
  inputs: z.optional(z.lazy(() => TreeManifestSchema)),
  leaseMs: z.number().check(z.gt(0)),
});
export type Assignment = z.infer<typeof AssignmentSchema>;

/** What a worker tells the syncer each time it asks for work; the syncer's farm status is built from it. */
export const WorkerReportSchema = z.strictObject({
  id: z.string().check(z.minLength(1), z.maxLength(255)),
  name: z.string().check(z.maxLength(255)),
  cores: z.number().check(z.int(), z.gte(1), z.lte(4096)),
  running: count,
  done: count,
  failed: count,
  toolchains: z.array(z.string().check(z.maxLength(1024))).check(z.maxLength(64)),
  blobsFetched: count,
  statusUrl: z.string().check(z.maxLength(1024)),
});
export type WorkerReport = z.infer<typeof WorkerReportSchema>;

/** An include tree: every file under the syncer's roots, by client path. */
export const TreeManifestSchema = z.strictObject({
  roots: z.array(path),
  files: z.record(path, digest),
  /** Files laid out executable (an REAPI input's is_executable). */
  executables: z.optional(z.array(path)),
  /** Symbolic links (an REAPI input tree's SymlinkNodes), by path: their targets, checked to stay inside. */
  symlinks: z.optional(z.record(path, path)),
  /** Directories that must exist even when empty. */
  dirs: z.optional(z.array(path)),
});
export type TreeManifest = z.infer<typeof TreeManifestSchema>;

/** `POST /tree/refresh`: rehash these paths (all when absent). */
export const TreeRefreshSchema = z.strictObject({ paths: z.optional(z.array(path).check(z.maxLength(1_000_000))) });

/** `POST /blobs/missing`: which of these the syncer lacks. */
export const MissingBlobsSchema = z.strictObject({ digests: z.array(z.string()).check(z.maxLength(1_000_000)) });

/** A body that does not fit its schema: the first problem, named by its field path. */
export class BadMessage extends Error {
  readonly field: string;
  constructor(what: string, field: string, problem: string) {
    super(`${what}: ${field || '(body)'}: ${problem}`);
    this.name = 'BadMessage';
    this.field = field;
  }
}

/** Parses a message with its schema; throws BadMessage naming the field. */
export function parseMessage<T>(schema: z.ZodMiniType<T>, value: unknown, what: string): T {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const field = (issue?.path ?? []).join('.');
  // A strict object names the fields it does not know in `keys`, at the object's own path.
  const keys = (issue as { keys?: string[] } | undefined)?.keys;
  if (keys?.length) throw new BadMessage(what, [field, keys[0]].filter(Boolean).join('.'), 'unknown field');
  throw new BadMessage(what, field, issue?.message ?? 'invalid');
}
