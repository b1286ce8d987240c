import { readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { parseDepFile } from '../../compiler/depfile.ts';
import { parseArgs } from '../../compiler/options.ts';
import type { CompileFn } from '../../compiler/run.ts';
import { runCompiler } from '../../compiler/run.ts';
import { tempName } from '../../core/atomic-fs.ts';
import type { Config } from '../../core/config.ts';
import { fsError } from '../../core/errors.ts';
import { type ActionResult, type Command, type Digest, type Directory, msg } from '../../reapi/proto.ts';
import type { FarmRun } from '../client.ts';
import { Fallback, remoteOrLocal, withExpandedArgs, withOutput } from '../client.ts';
import { jobEnv, mapArgs, Refusal, SYSTEM_PREFIXES, within } from '../policy.ts';
import { clientFor, digestOf, MissingOnEngine, type ReapiClient } from './engine-client.ts';
import { scanIncludes } from './include-scan.ts';

/**
 * `accel cc` as a Remote Execution API client (farm.reapi): a cache miss becomes an action on any REAPI engine
 * (accel's syncer, Buildbarn, BuildBuddy, NativeLink …). The input root is the source and the headers it may
 * read (include-scan.ts, or the compiler's `-M` where that cannot be sure), under the nearest directory
 * holding them, the working directory and the outputs; system headers (/usr) are the engine's. Absolute paths in the arguments
 * under that root become relative, so the action means the same on any machine. Only blobs the engine lacks
 * (FindMissingBlobs) are uploaded. Whatever goes wrong with the engine, the compile runs here instead, and
 * `fallback` says why (counted and announced once, like the farm's).
 */
type DispatchOptions = Parameters<CompileFn>[2];

export async function reapiCompile(
  config: Config,
  home: string,
  call: { compilerPath: string; args: string[]; options: DispatchOptions },
): Promise<FarmRun> {
  const farm = config.farm;
  const { compilerPath, args, options } = call;
  return remoteOrLocal({
    home,
    endpoint: farm.reapi,
    startTimeoutMs: farm.startTimeout * 1000,
    call,
    connect: () => clientFor(farm, home),
    reachable: (client) => client.reachable(farm.startTimeout * 1000),
    run: (client) => execute(client, compilerPath, args, options, farm),
  });
}

interface Input {
  digest: Digest;
  executable: boolean;
}

async function execute(
  client: ReapiClient,
  compilerPath: string,
  userArgs: string[],
  options: DispatchOptions,
  farm: Config['farm'],
): Promise<FarmRun> {
  const { cwd, compile } = options;
  let args = withOutput(withExpandedArgs(userArgs, compile), compile);
  let outputs: string[];
  try {
    outputs = mapArgs({ args, cwd, roots: ['/'], root: '/' }).outputs;
  } catch (err) {
    if (err instanceof Refusal)
      throw new Fallback(err.argument ? `refused argument ${err.argument}` : `refused: ${err.code}`);
    throw err;
  }
  // The headers, found by reading the files (cached per daemon); the compiler's own -M when that cannot be sure.
  const deps =
    scanIncludes({
      compilerPath,
      args,
      cwd,
      source: compile.source,
      language: compile.language,
      env: options.env,
    }) ?? (await scan(compilerPath, args, options));
  const inputs = deps.map((d) => resolve(cwd, d)).filter((p) => !within(p, SYSTEM_PREFIXES));
  const root = commonDir([cwd, ...inputs.map(dirname), ...outputs.map(dirname)]);
  // A dependency file names its target as the arguments spelled the output; keep the user's spelling.
  if (compile.deps && !args.some((a) => /^-M[TQ]/.test(a))) args = [...args, '-MT', compile.deps.target];
  args = relativeArgs(args, cwd, root);
  const files = new Map<string, Input>();
  const blobs = new Map<string, { digest: Digest; data: () => Buffer }>();
  for (const path of inputs) {
    const known = fileInput(path);
    files.set(relative(root, path), known);
    blobs.set(known.digest.hash, { digest: known.digest, data: () => readInput(path, known.digest) });
  }
  const workingDirectory = relative(root, cwd);
  const tree = buildTree(files, [workingDirectory, ...outputs.map((o) => relative(root, dirname(o)))]);
  for (const [hash, data] of tree.blobs)
    blobs.set(hash, { digest: { hash, size_bytes: data.length }, data: () => data });
  const platform = {
    properties: farm.reapiPlatform
      .map((p) => {
        const at = p.indexOf('=');
        return { name: at < 0 ? p : p.slice(0, at), value: at < 0 ? '' : p.slice(at + 1) };
      })
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
  };
  const relOutputs = outputs.map((o) => relative(cwd, o)).sort();
  const command: Command = {
    arguments: [basename(compilerPath), ...args],
    environment_variables: Object.entries({ ...jobEnv(options.env), PATH: '/usr/local/bin:/usr/bin:/bin' })
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([name, value]) => ({ name, value })),
    output_files: relOutputs,
    output_directories: [],
    output_paths: relOutputs,
    working_directory: workingDirectory,
    platform,
  };
  const commandBytes = msg.Command.encode(command);
  const commandDigest = digestOf(commandBytes);
  blobs.set(commandDigest.hash, { digest: commandDigest, data: () => commandBytes });
  const actionBytes = msg.Action.encode({
    command_digest: commandDigest,
    input_root_digest: tree.root,
    do_not_cache: false,
    salt: Buffer.alloc(0),
    platform,
  });
  const actionDigest = digestOf(actionBytes);
  blobs.set(actionDigest.hash, { digest: actionDigest, data: () => actionBytes });
  await client.upload([...blobs.values()]);
  let result: ActionResult;
  try {
    result = await client.execute(actionDigest, relOutputs);
  } catch (err) {
    // The engine dropped blobs it had said it had (evicted, restarted): forget what it had, upload, once more.
    if (!(err instanceof MissingOnEngine)) throw err;
    client.forget();
    await client.upload([...blobs.values()]);
    result = await client.execute(actionDigest, relOutputs);
  }
  return finish(client, result, cwd, new Set(relOutputs));
}

/**
 * A file's digest, kept for the life of the process (the compile-cache daemon's) while its size, mtime, ctime
 * and inode stay the same: a header read by a hundred compiles is hashed once.
 */
const fileDigests = new Map<string, { key: string; input: Input }>();

function fileInput(path: string): Input {
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(path);
  } catch {
    throw new Fallback('input vanished');
  }
  const key = `${st.size} ${st.mtimeMs} ${st.ctimeMs} ${st.ino}`;
  const known = fileDigests.get(path);
  if (known?.key === key) return known.input;
  const input = { digest: digestOf(readInput(path)), executable: (st.mode & 0o111) !== 0 };
  if (fileDigests.size > 100_000) fileDigests.clear();
  fileDigests.set(path, { key, input });
  return input;
}

/** A file's bytes; when `expected` is given they must still be what was hashed (else the compile runs here). */
function readInput(path: string, expected?: Digest): Buffer {
  let data: Buffer;
  try {
    data = readFileSync(path);
  } catch {
    throw new Fallback('input vanished');
  }
  if (expected && digestOf(data).hash !== expected.hash) {
    fileDigests.delete(path);
    throw new Fallback('input changed during the compile');
  }
  return data;
}

/** The files the compile reads, as the compiler's own dependency output for these arguments (-M) names them. */
async function scan(compilerPath: string, args: string[], options: DispatchOptions): Promise<string[]> {
  const kept: string[] = [];
  for (const arg of parseArgs(args)) {
    if (arg.kind === 'output-path') continue; // -o, -MF
    if (['-MD', '-MMD', '-MP', '-MT', '-MQ', '-c', '-S'].includes(arg.option)) continue;
    kept.push(...arg.raw);
  }
  const depFile = join(tmpdir(), tempName('accel-reapi-deps-'));
  try {
    const run = await runCompiler(compilerPath, [...kept, '-M', '-MF', depFile], {
      cwd: options.cwd,
      env: options.env,
    });
    if (run.code !== 0) throw new Fallback('dependency scan failed');
    return parseDepFile(readFileSync(depFile, 'utf8')).deps;
  } finally {
    rmSync(depFile, { force: true });
  }
}

/** Absolute paths of sources, inputs and outputs under `root`, rewritten relative to the working directory. */
function relativeArgs(args: string[], cwd: string, root: string): string[] {
  const out: string[] = [];
  const rel = (value: string) =>
    isAbsolute(value) && within(value, [root]) && !within(value, SYSTEM_PREFIXES) ? relative(cwd, value) || '.' : value;
  for (const arg of parseArgs(args)) {
    if (arg.kind === 'source') out.push(rel(arg.value as string));
    else if ((arg.kind === 'input-path' || arg.kind === 'output-path') && arg.value !== undefined) {
      const value = rel(arg.value);
      if (arg.raw.length === 2) out.push(arg.option, value);
      else out.push(`${arg.option}${arg.option.startsWith('--') ? '=' : ''}${value}`);
    } else out.push(...arg.raw);
  }
  return out;
}

function commonDir(paths: string[]): string {
  let common = paths[0] as string;
  for (const p of paths.slice(1)) {
    while (!within(p, [common])) common = dirname(common);
  }
  return common;
}

/** The input root as REAPI Directory messages (names sorted, as the protocol asks), with the dirs `dirs` exist. */
function buildTree(files: Map<string, Input>, dirs: string[]): { root: Digest; blobs: Map<string, Buffer> } {
  interface Node {
    files: Map<string, Input>;
    dirs: Map<string, Node>;
  }
  const top: Node = { files: new Map(), dirs: new Map() };
  const dirNode = (path: string): Node => {
    let node = top;
    for (const part of path.split(sep).filter((p) => p && p !== '.')) {
      let next = node.dirs.get(part);
      if (!next) {
        next = { files: new Map(), dirs: new Map() };
        node.dirs.set(part, next);
      }
      node = next;
    }
    return node;
  };
  for (const d of dirs) dirNode(d);
  for (const [path, input] of files) dirNode(dirname(path)).files.set(basename(path), input);
  const blobs = new Map<string, Buffer>();
  const encode = (node: Node): Digest => {
    const byName = <T>(m: Map<string, T>) => [...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const dir: Directory = {
      files: byName(node.files).map(([name, f]) => ({ name, digest: f.digest, is_executable: f.executable })),
      directories: byName(node.dirs).map(([name, sub]) => ({ name, digest: encode(sub) })),
      symlinks: [],
    };
    const data = msg.Directory.encode(dir);
    const digest = digestOf(data);
    blobs.set(digest.hash, data);
    return digest;
  };
  return { root: encode(top), blobs };
}

/** Writes the outputs at the client's paths (each by rename: never half-written) and returns the run. */
async function finish(client: ReapiClient, result: ActionResult, cwd: string, expected: Set<string>): Promise<FarmRun> {
  const wanted = result.output_files.filter((f) => f.digest);
  for (const f of wanted) if (!expected.has(f.path)) throw new Fallback('unexpected output');
  const contents = await client.download(
    wanted
      .filter((f) => !f.contents || digestOf(Buffer.from(f.contents)).hash !== f.digest?.hash)
      .map((f) => f.digest as Digest),
  );
  for (const f of wanted) {
    const hash = (f.digest as Digest).hash;
    if (!contents.has(hash)) contents.set(hash, Buffer.from(f.contents as Uint8Array));
  }
  const stdout = result.stdout_raw?.length ? Buffer.from(result.stdout_raw) : await client.text(result.stdout_digest);
  const stderr = result.stderr_raw?.length ? Buffer.from(result.stderr_raw) : await client.text(result.stderr_digest);
  // A file the dependency scan did not name (read by the assembler, say) is missing only there: compile here.
  if (result.exit_code !== 0 && /: No such file or directory/.test(stderr.toString('latin1')))
    throw new Fallback('an input the scan missed');
  for (const f of wanted) {
    const target = resolve(cwd, f.path);
    const data = contents.get((f.digest as Digest).hash) as Buffer;
    const temp = join(dirname(target), tempName(`.${basename(target)}.`));
    try {
      writeFileSync(temp, data, { mode: f.is_executable ? 0o755 : 0o644 });
      renameSync(temp, target);
    } catch (err) {
      rmSync(temp, { force: true });
      throw fsError(err, 'writing', target);
    }
  }
  return { code: result.exit_code, stdout, stderr, remote: true };
}
