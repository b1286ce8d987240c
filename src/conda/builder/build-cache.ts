/**
 * Build results kept like Bazel keeps an action's: a feedstock's build scripts that ran once with the same
 * inputs are not run again; the files they installed into $PREFIX are put back from the store, and packaging,
 * the checks and the tests go on as after a run. A build number bump, a changed run_exports pin, a fixed test
 * or an edited `about:` changes nothing a build script sees, so the rebuild skips configure, make and the
 * compiles altogether (the compile cache still serves every build whose scripts did change).
 *
 * What the scripts can see, and so the key: each script's text and its environment (the recipe directory by
 * name: a copy of the feedstock elsewhere builds the same); the work tree as the sources and patches left it;
 * the recipe directory but its recipe file (build.sh, patches, helpers; the recipe file changes with the build
 * number, and what it says to the scripts is in their text and environment); the host and build prefixes'
 * installed files (every package's payload, not conda-meta/, which names build numbers); the output records
 * that shape the runs (names, host requirements, entry points); the toolchain's and the emulator's identities;
 * and the machine's installed packages (dpkg's status), which covers the tools on PATH. The workspace's paths
 * are spelled, not named: they end up in the files. $PKG_BUILDNUM and $PKG_BUILD_STRING stay in the key only
 * when a script or a file of the work tree or recipe names them. Files that name the recipe directory are not
 * kept (the next build's recipe directory may be elsewhere).
 */
import { createHash } from 'node:crypto';
import { chmodSync, lstatSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { makeDirs } from '../../core/dirs.ts';
import type { Digest } from '../../store/digest.ts';
import { REF_NS } from '../../store/namespaces.ts';
import type { Store } from '../../store/store.ts';
import { treeDigest } from './tree-digest.ts';

export const SCRIPTS_NS = REF_NS.condaBuildScripts;

const RECIPE_FILES = new Set(['meta.yaml', 'recipe.yaml']);
const BUILD_NUMBER_VARS = ['PKG_BUILDNUM', 'PKG_BUILD_STRING'];
const NAMES_BUILD_NUMBER = /\bPKG_BUILD(NUM|_STRING)\b/;

/** One script run of a feedstock's build, in the order the build runs them. */
interface ScriptRun {
  output: string;
  text: string;
  env: Record<string, string>;
  /** What else of the output shapes the run: its host requirements (siblings installed), its entry points. */
  shape: unknown;
}

export interface BuildInputs {
  runs: ScriptRun[];
  srcDir: string;
  recipeDir: string;
  prefix: string;
  buildPrefix: string;
  identities: string[];
  emulator: string | null;
  /** dpkg's status file: any package installed, removed or upgraded on the machine changes it. */
  machinePackages: string;
}

/** The key of a feedstock's build scripts' inputs. */
export function buildKey(inputs: BuildInputs): string {
  const h = createHash('sha256');
  const part = (name: string, value: string) => h.update(`${name}\0${value.length}\0${value}\0`);
  const named = (v: string) => v.split(inputs.recipeDir).join('<recipe>');
  part('accel-conda-build-scripts', '1');
  let namesBuildNumber = inputs.runs.some((r) => NAMES_BUILD_NUMBER.test(r.text));
  const look = (_rel: string, text: string) => {
    if (!namesBuildNumber && NAMES_BUILD_NUMBER.test(text)) namesBuildNumber = true;
  };
  part(
    'work',
    treeDigest(inputs.srcDir, () => false, look),
  );
  part(
    'recipe',
    treeDigest(inputs.recipeDir, (rel) => RECIPE_FILES.has(rel), look),
  );
  part(
    'prefix',
    treeDigest(inputs.prefix, (rel) => rel === 'conda-meta'),
  );
  part(
    'build-prefix',
    treeDigest(inputs.buildPrefix, (rel) => rel === 'conda-meta'),
  );
  for (const run of inputs.runs) {
    part('run', run.output);
    part('script', named(run.text));
    part('shape', JSON.stringify(run.shape));
    for (const [k, v] of Object.entries(run.env).sort(([a], [b]) => a.localeCompare(b))) {
      if (!namesBuildNumber && BUILD_NUMBER_VARS.includes(k)) continue;
      part(`env ${k}`, named(v));
    }
  }
  for (const id of inputs.identities) part('identity', id);
  if (inputs.emulator) part('emulator', fileDigest(inputs.emulator));
  part('machine', fileDigest(inputs.machinePackages));
  return h.digest('hex');
}

function fileDigest(file: string): string {
  try {
    return createHash('sha256').update(readFileSync(file)).digest('hex');
  } catch {
    return 'absent';
  }
}

/** A file a script installed: its path under $PREFIX, and its blob (a file) or target (a symlink). */
interface KeptFile {
  path: string;
  mode?: number;
  digest?: string;
  link?: string;
}

interface Manifest {
  runs: KeptFile[][];
  /** The log of the build that ran the scripts, in the store. */
  log: string;
}

/** The kept result of a feedstock's scripts, when the store has it whole. */
export function keptBuild(store: Store, key: string): Manifest | null {
  const ref = store.refs.get(SCRIPTS_NS, key);
  if (!ref) return null;
  const data = store.read(ref.digest as Digest);
  if (!data) return null;
  const manifest = JSON.parse(data.toString('utf8')) as Manifest;
  const blobs = manifest.runs.flat().flatMap((f) => (f.digest ? [f.digest] : []));
  return blobs.every((d) => store.has(d as Digest)) ? manifest : null;
}

/** Puts a kept run's files back into $PREFIX, as the script left them. Returns their paths. */
export function restoreRun(store: Store, files: KeptFile[], prefix: string): string[] {
  for (const f of files) {
    const abs = join(prefix, f.path);
    makeDirs(dirname(abs));
    rmSync(abs, { force: true });
    if (f.link !== undefined) {
      symlinkSync(f.link, abs);
      continue;
    }
    const data = store.read(f.digest as Digest);
    if (!data) throw new Error(`blob ${f.digest} of ${f.path} left the store`);
    writeFileSync(abs, data, { mode: f.mode });
    chmodSync(abs, f.mode as number);
  }
  return files.map((f) => f.path);
}

/**
 * Records the runs of one build as they happen: each run's new files go into the store right away (the next
 * output's run starts from a fresh $PREFIX). `keep` writes the manifest once every script has run, unless a
 * file named the recipe directory.
 */
export class BuildRecorder {
  readonly #runs: KeptFile[][] = [];
  #refused: string | null = null;
  readonly store: Store;
  readonly recipeDir: string;
  constructor(store: Store, recipeDir: string) {
    this.store = store;
    this.recipeDir = recipeDir;
  }

  async record(prefix: string, files: string[]): Promise<void> {
    const kept: KeptFile[] = [];
    const needle = Buffer.from(this.recipeDir);
    for (const path of files) {
      const abs = join(prefix, path);
      const st = lstatSync(abs);
      if (st.isSymbolicLink()) {
        kept.push({ path, link: readlinkSync(abs) });
        continue;
      }
      const data = readFileSync(abs);
      if (data.includes(needle)) this.#refused ??= `${path} names the recipe directory`;
      if (this.#refused) continue;
      const blob = await this.store.putBuffer(data);
      kept.push({ path, mode: st.mode & 0o7777, digest: blob.digest });
    }
    this.#runs.push(kept);
  }

  /** Keeps the result under `key`; returns why not, when it cannot. */
  async keep(key: string, log: string): Promise<string | null> {
    if (this.#refused) return this.#refused;
    const logBlob = await this.store.putBuffer(readFileSync(log));
    const manifest: Manifest = { runs: this.#runs, log: logBlob.digest };
    const blob = await this.store.putBuffer(Buffer.from(JSON.stringify(manifest)));
    this.store.refs.set(SCRIPTS_NS, key, blob.digest, { files: this.#runs.flat().length });
    return null;
  }
}
