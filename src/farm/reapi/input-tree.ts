import { posix } from 'node:path';
import { type Digest, msg } from '../../reapi/proto.ts';
import { Code, checkDigest, missingBlobs, RpcError } from '../../reapi/rpc.ts';
import type { ReapiStorage } from '../../reapi/storage.ts';
import type { TreeManifest } from '../protocol.ts';

/** Where an action's input root appears to the job (the worker lays it out under its sandbox root). */
export const ACTION_ROOT = '/reapi';
/** Deeper input trees are refused: a Directory graph must not make the walk recurse without end. */
const MAX_DEPTH = 256;

/**
 * An action's input root as a job manifest: every file at ACTION_ROOT/path (executables named), every
 * directory (empty ones must exist too) and every symlink with its target; the missing blobs named
 * (FAILED_PRECONDITION, so the client uploads them and asks again).
 *
 * Symlinks follow REAPI v2 with SymlinkAbsolutePathStrategy DISALLOWED: a target is relative to the link's
 * directory and must stay inside the input root; an absolute or escaping target is INVALID_ARGUMENT. A name
 * appears once per directory, whatever its kind, so no file is ever written through a link.
 */
export function inputManifest(storage: ReapiStorage, root: Digest): TreeManifest {
  const files: Record<string, string> = {};
  const executables: string[] = [];
  const symlinks: Record<string, string> = {};
  const dirs: string[] = [];
  const missing: Digest[] = [];
  const walk = (d: Digest, dir: string, depth: number) => {
    if (depth > MAX_DEPTH) throw new RpcError(Code.INVALID_ARGUMENT, 'input tree nested too deeply');
    const data = storage.read(d.hash);
    if (!data) {
      missing.push(d);
      return;
    }
    const node = msg.Directory.decode(data);
    dirs.push(dir);
    const names = new Set<string>();
    const name = (n: string) => {
      checkName(n);
      if (names.has(n)) throw new RpcError(Code.INVALID_ARGUMENT, `input ${posix.join(dir, n)} appears twice`);
      names.add(n);
      return posix.join(dir, n);
    };
    for (const f of node.files) {
      const digest = checkDigest(f.digest, `input ${f.name}`);
      const path = name(f.name);
      if (!storage.has(digest.hash)) missing.push(digest);
      files[path] = digest.hash;
      if (f.is_executable) executables.push(path);
    }
    for (const s of node.symlinks) symlinks[name(s.name)] = checkLinkTarget(posix.join(dir, s.name), s.target);
    for (const sub of node.directories) {
      walk(checkDigest(sub.digest, `directory ${sub.name}`), name(sub.name), depth + 1);
    }
  };
  walk(root, ACTION_ROOT, 0);
  if (missing.length > 0) throw missingBlobs(missing);
  // Each target stays inside on its own; followed through the tree's other links too (`a -> .`, `b -> a/..`).
  for (const path of Object.keys(symlinks)) staysInside(path, symlinks);
  return { roots: [ACTION_ROOT], files, executables, symlinks, dirs };
}

/**
 * A symlink's target, when it is relative and stays inside the action's root read from where the link is;
 * anything else throws `error` (INVALID_ARGUMENT for inputs; outputs pass their own).
 */
export function checkLinkTarget(
  path: string,
  target: string,
  error = (why: string) => new RpcError(Code.INVALID_ARGUMENT, why),
): string {
  const shown = `symlink ${path.slice(ACTION_ROOT.length + 1)} -> ${target}`;
  if (!target || target.includes('\0')) throw error(`${shown}: an empty or invalid target`);
  if (posix.isAbsolute(target)) {
    throw error(`${shown}: absolute targets are not allowed here (SymlinkAbsolutePathStrategy DISALLOWED)`);
  }
  const resolved = posix.join(posix.dirname(path), target);
  if (resolved !== ACTION_ROOT && !resolved.startsWith(`${ACTION_ROOT}/`)) {
    throw error(`${shown}: the target leaves the action's input root`);
  }
  return target;
}

/** Links followed per path before it counts as a loop (Linux's own limit). */
const MAX_HOPS = 40;

/**
 * Resolves a link's target as the kernel would inside the laid-out tree, following the tree's links, and
 * throws INVALID_ARGUMENT when any step climbs above the input root. A name not in the tree resolves as itself.
 */
function staysInside(link: string, symlinks: Record<string, string>): void {
  const stack = posix.dirname(link).split('/').filter(Boolean);
  const depth = ACTION_ROOT.split('/').filter(Boolean).length;
  let hops = 0;
  const follow = (target: string) => {
    for (const part of target.split('/')) {
      if (part === '' || part === '.') continue;
      if (part === '..') {
        if (stack.length <= depth) {
          throw new RpcError(
            Code.INVALID_ARGUMENT,
            `symlink ${link.slice(ACTION_ROOT.length + 1)} -> ${symlinks[link]}: resolved through the tree's other links, it leaves the action's input root`,
          );
        }
        stack.pop();
        continue;
      }
      stack.push(part);
      const next = symlinks[`/${stack.join('/')}`];
      if (next !== undefined) {
        if (++hops > MAX_HOPS) throw new RpcError(Code.INVALID_ARGUMENT, `symlink ${link}: too many levels of links`);
        stack.pop();
        follow(next);
      }
    }
  };
  follow(symlinks[link] as string);
}

function checkName(name: string): void {
  if (!name || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
    throw new RpcError(Code.INVALID_ARGUMENT, `input name ${JSON.stringify(name)} is not a single path component`);
  }
}
