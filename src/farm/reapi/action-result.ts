import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import {
  type ActionResult,
  type Command,
  type Digest,
  type Directory,
  msg,
  type OutputFile,
} from '../../reapi/proto.ts';
import { Code, RpcError } from '../../reapi/rpc.ts';
import type { ReapiStorage } from '../../reapi/storage.ts';
import type { Digest as StoreDigest } from '../../store/digest.ts';
import type { JobOutput, JobResult } from '../protocol.ts';
import { ACTION_ROOT, checkLinkTarget } from './input-tree.ts';

/** Blobs up to this size travel inline in a result (stdout, stderr). */
const INLINE_MAX = 64 * 1024;

/** What a command declares, relative to its working directory: v2.1's output_paths, or v2.0's files and dirs. */
function declaredOutputs(command: Command): { files: string[]; dirs: string[]; either: string[] } {
  if (command.output_paths.length > 0) return { files: [], dirs: [], either: command.output_paths };
  return { files: command.output_files, dirs: command.output_directories, either: [] };
}

/** The absolute (client) paths of a command's declared outputs, for the worker to collect. */
export function declaredPaths(command: Command, cwd: string): { files: string[]; dirs: string[] } {
  const d = declaredOutputs(command);
  const abs = (p: string) => {
    const path = posix.join(cwd, p);
    // REAPI: outputs are relative paths inside the input root; anything else is the request's mistake.
    if (posix.isAbsolute(p) || !path.startsWith(`${ACTION_ROOT}/`)) {
      throw new RpcError(
        Code.INVALID_ARGUMENT,
        `output ${JSON.stringify(p)} is not a relative path inside the input root`,
      );
    }
    return path;
  };
  return { files: [...d.files, ...d.either].map(abs), dirs: d.dirs.map(abs) };
}

/**
 * A finished job as an ActionResult, and what must be stored for it: its outputs, stdout and stderr in the
 * CAS. Outputs the client asked to get inline travel in the answer, and are stored after it (off the
 * compile's critical path, each put is an fsync); the others are stored before, since the client will
 * read them from the CAS. Declared directories become Tree messages (REAPI v2's output_directories), and
 * symbolic links output symlinks; a link whose target is absolute or leaves the root is FAILED_PRECONDITION
 * (SymlinkAbsolutePathStrategy DISALLOWED), never handed to the client.
 */
export async function toActionResult(
  storage: ReapiStorage,
  result: JobResult,
  job: { command: Command; cwd: string; queuedAt: Date; inline: Set<string> },
): Promise<{ result: ActionResult; persist: () => Promise<void> }> {
  const { store } = storage;
  const { command, cwd, inline } = job;
  const has = (hash: string) => storage.has(hash);
  const ensure = (data: Buffer) => storage.ensure(data);
  if (result.status === 'refused') throw new RpcError(Code.PERMISSION_DENIED, `${result.code}: ${result.message}`);
  if (result.status === 'not-started') throw new RpcError(Code.UNAVAILABLE, 'no worker took the action in time');
  if (result.status === 'failed')
    throw new RpcError(Code.UNAVAILABLE, `the farm could not run the action: ${result.reason}`);
  const declared = declaredOutputs(command);
  const rel = (path: string) => posix.relative(cwd, path);
  const later: (() => Promise<unknown>)[] = [];
  const now: Promise<unknown>[] = [];
  const put = (out: JobOutput, data: Buffer | undefined) =>
    data && !has(out.digest) ? store.putBuffer(data, { expected: out.digest as StoreDigest }) : Promise.resolve();
  const files = new Map<string, JobOutput>(result.outputs.map((o) => [rel(o.path), o]));
  const links = new Map<string, string>((result.links ?? []).map((l) => [rel(l.path), l.target]));
  const dirs = new Set((result.dirs ?? []).map(rel));
  for (const [path, target] of links) {
    checkLinkTarget(posix.join(cwd, path), target, (why) => new RpcError(Code.FAILED_PRECONDITION, `output ${why}`));
  }
  const outputs: OutputFile[] = [];
  const fileLinks: { path: string; target: string }[] = [];
  const dirLinks: { path: string; target: string }[] = [];
  const trees: { path: string; tree_digest: Digest }[] = [];
  const addFile = (path: string) => {
    const out = files.get(path) as JobOutput;
    const data = out.data === undefined ? undefined : Buffer.from(out.data, 'base64');
    if (data && inline.has(path)) later.push(() => put(out, data));
    else now.push(put(out, data));
    outputs.push({
      path,
      digest: { hash: out.digest, size_bytes: out.size },
      is_executable: out.executable === true,
      ...(data && inline.has(path) ? { contents: data } : {}),
    });
  };
  const addTree = (path: string) => {
    const tree = outputTree(path, { files, links, dirs });
    // Every file of a tree is read from the CAS: stored before the answer.
    for (const f of tree.files) now.push(put(f, f.data === undefined ? undefined : Buffer.from(f.data, 'base64')));
    const data = msg.Tree.encode(tree.message);
    now.push(ensure(data));
    trees.push({ path, tree_digest: digestOf(data) });
  };
  for (const path of [...declared.files, ...declared.either]) {
    if (files.has(path)) addFile(path);
    else if (links.has(path)) fileLinks.push({ path, target: links.get(path) as string });
    else if (dirs.has(path) && declared.either.includes(path)) addTree(path);
  }
  for (const path of declared.dirs) {
    if (dirs.has(path)) addTree(path);
    else if (links.has(path)) dirLinks.push({ path, target: links.get(path) as string });
  }
  // Side by side: each put ends in an fsync, and they overlap.
  await Promise.all(now);
  for (const out of outputs) {
    if (!out.contents && !has(out.digest?.hash ?? ''))
      throw new RpcError(Code.UNAVAILABLE, `output ${out.path} did not reach the syncer`);
  }
  const stdout = Buffer.from(result.stdout, 'latin1');
  const stderr = Buffer.from(result.stderr, 'latin1');
  const streams = [stdout, stderr].map((b) => (b.length <= INLINE_MAX ? () => ensure(b) : undefined));
  // Streams too large to travel inline are stored now; the others with the inline outputs.
  await Promise.all([stdout, stderr].filter((b) => b.length > INLINE_MAX).map((b) => ensure(b)));
  for (const s of streams) if (s) later.push(s);
  const byPath = <T extends { path: string }>(list: T[]) => list.sort((a, b) => (a.path < b.path ? -1 : 1));
  const symlinks = byPath([...fileLinks, ...dirLinks]);
  return {
    result: {
      output_files: byPath(outputs),
      exit_code: result.exitCode,
      stdout_digest: digestOf(stdout),
      stderr_digest: digestOf(stderr),
      ...(stdout.length <= INLINE_MAX ? { stdout_raw: stdout } : {}),
      ...(stderr.length <= INLINE_MAX ? { stderr_raw: stderr } : {}),
      ...(trees.length > 0 ? { output_directories: byPath(trees) } : {}),
      // v2.0 clients read the two typed lists, v2.1 clients output_symlinks: both are filled.
      ...(fileLinks.length > 0 ? { output_file_symlinks: byPath(fileLinks) } : {}),
      ...(dirLinks.length > 0 ? { output_directory_symlinks: byPath(dirLinks) } : {}),
      ...(symlinks.length > 0 ? { output_symlinks: symlinks } : {}),
      execution_metadata: {
        worker: result.worker,
        queued_timestamp: timestamp(job.queuedAt),
        worker_completed_timestamp: timestamp(new Date()),
      },
    },
    persist: async () => {
      await Promise.all(later.map((f) => f()));
    },
  };
}

/**
 * The Tree of the output directory at `top` (relative to the working directory): its Directory and every
 * directory below it, each with its files, links and subdirectories sorted by name, as REAPI requires.
 */
function outputTree(
  top: string,
  found: { files: Map<string, JobOutput>; links: Map<string, string>; dirs: Set<string> },
): { message: { root: Directory; children: Directory[] }; files: JobOutput[] } {
  const entries = new Map<string, { files: string[]; links: string[]; dirs: string[] }>();
  const inside = (p: string) => p.startsWith(`${top}/`);
  const entry = (path: string) => {
    const dir = posix.dirname(path);
    let e = entries.get(dir);
    if (!e) {
      e = { files: [], links: [], dirs: [] };
      entries.set(dir, e);
    }
    return e;
  };
  for (const p of found.files.keys()) if (inside(p)) entry(p).files.push(p);
  for (const p of found.links.keys()) if (inside(p)) entry(p).links.push(p);
  for (const p of found.dirs) if (inside(p)) entry(p).dirs.push(p);
  const children = new Map<string, Directory>();
  const files: JobOutput[] = [];
  const byName = <T extends { name: string }>(list: T[]) => list.sort((a, b) => (a.name < b.name ? -1 : 1));
  const build = (dir: string): Directory => {
    const e = entries.get(dir) ?? { files: [], links: [], dirs: [] };
    const node: Directory = { files: [], directories: [], symlinks: [] };
    for (const path of e.files) {
      const out = found.files.get(path) as JobOutput;
      files.push(out);
      const digest = { hash: out.digest, size_bytes: out.size };
      node.files.push({ name: posix.basename(path), digest, is_executable: out.executable === true });
    }
    for (const path of e.links)
      node.symlinks.push({ name: posix.basename(path), target: found.links.get(path) as string });
    for (const sub of e.dirs) {
      const child = build(sub);
      const digest = digestOf(msg.Directory.encode(child));
      children.set(digest.hash, child);
      node.directories.push({ name: posix.basename(sub), digest });
    }
    byName(node.files);
    byName(node.directories);
    byName(node.symlinks);
    return node;
  };
  const root = build(top);
  return { message: { root, children: [...children.values()] }, files };
}

function digestOf(data: Buffer): Digest {
  return { hash: createHash('sha256').update(data).digest('hex'), size_bytes: data.length };
}

/** Whether the client can use a result without reading anything from the CAS. */
export function inlineOnly(result: ActionResult): boolean {
  return (
    result.output_files.every((f) => f.contents !== undefined) &&
    (result.output_directories ?? []).length === 0 &&
    (result.stdout_raw !== undefined || result.stdout_digest?.size_bytes === 0) &&
    (result.stderr_raw !== undefined || result.stderr_digest?.size_bytes === 0)
  );
}

function timestamp(date: Date): { seconds: number; nanos: number } {
  const ms = date.getTime();
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 };
}
