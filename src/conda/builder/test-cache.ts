/**
 * Test results kept like Bazel keeps them: a package's tests that passed once are not run again while
 * everything they can see is the same. A build number bump rebuilds a package with the same files; running
 * its tests again under qemu would only repeat a known answer.
 *
 * What a test can see, and so its key: the test script; the recipe directory but its recipe file (run_test.sh,
 * test programs; the recipe file changes with the build number, and what it says about the test is in the
 * script already); the test directory (test/files, test/source_files); the test environment's installed files
 * (every package's payload, not conda-meta/, which names build numbers); the environment variables (the
 * workspace's and the recipe directory's paths by name); the toolchain and emulator identities; the machine
 * tools linked for the test. A test that names the build number ($PKG_BUILDNUM, $PKG_BUILD_STRING) keeps it
 * in its key, and one that reads $SRC_DIR (the build's work tree, which holds logs and timestamps) is never
 * taken from the cache: its script, its test files and the recipe files they name are read for those names
 * (not the build scripts beside them).
 */
import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import { REF_NS } from '../../store/namespaces.ts';
import { toolsDigest, treeDigest } from './tree-digest.ts';

export const TESTED_NS = REF_NS.condaTest;

/** Files of a recipe directory that are the recipe itself, not something a test reads. */
const RECIPE_FILES = new Set(['meta.yaml', 'recipe.yaml']);

export interface TestInputs {
  /** The test script accel runs (its commands, `bash -e run_test.sh`). */
  script: string;
  recipeDir: string;
  /** The test's working directory, test/files and test/source_files copied in. */
  testDir: string;
  testPrefix: string;
  /** The machine tools linked for the test (symlinks to the machine's own). */
  toolsDir: string;
  env: Record<string, string>;
  /**
   * Paths named rather than spelled: this build's workspace (the same on every build of the feedstock) and the
   * recipe directory (a copy of the feedstock elsewhere tests the same); what lies under them is hashed.
   */
  workspacePaths: Record<string, string>;
  /** Toolchain identities (compilers' versions and digests), and the emulator's file. */
  identities: string[];
  emulator: string | null;
}

/** The key of a test's inputs, or why it cannot have one. */
export function testKey(inputs: TestInputs): { key: string } | { uncached: string } {
  const h = createHash('sha256');
  const part = (name: string, value: string) => h.update(`${name}\0${value.length}\0${value}\0`);
  // Longest first, so that a path under another is named by its own name.
  const paths = Object.entries(inputs.workspacePaths).sort(([, a], [, b]) => b.length - a.length);
  const named = (v: string) => paths.reduce((s, [name, p]) => s.split(p).join(`<${name}>`), v);
  part('accel-conda-test', '1');
  part('script', named(inputs.script));
  const recipeTexts = new Map<string, string>();
  const testTexts = new Map<string, string>();
  part(
    'recipe',
    treeDigest(inputs.recipeDir, (rel) => RECIPE_FILES.has(rel), textsInto(recipeTexts)),
  );
  part(
    'test-dir',
    treeDigest(inputs.testDir, () => false, textsInto(testTexts)),
  );
  part(
    'prefix',
    treeDigest(inputs.testPrefix, (rel) => rel === 'conda-meta'),
  );
  part('tools', toolsDigest(inputs.toolsDir));
  const read = textsTheTestRuns(inputs.script, testTexts, recipeTexts);
  if (/\bSRC_DIR\b/.test(read)) return { uncached: 'it reads $SRC_DIR, the build’s work tree' };
  const namesBuild = /\bPKG_BUILD(NUM|_STRING)\b/.test(read);
  for (const [k, v] of Object.entries(inputs.env).sort(([a], [b]) => a.localeCompare(b))) {
    if (!namesBuild && (k === 'PKG_BUILDNUM' || k === 'PKG_BUILD_STRING')) continue;
    part(`env ${k}`, named(v));
  }
  for (const id of inputs.identities) part('identity', id);
  if (inputs.emulator) {
    const s = statSync(inputs.emulator);
    part('emulator', `${inputs.emulator} ${s.size} ${s.mtimeMs}`);
  }
  return { key: h.digest('hex') };
}

/**
 * The texts a test runs, to look for the variables it reads: its script, the test directory's files, and the
 * recipe directory's files that one of those names (run_test.sh by the script, a helper by run_test.sh), but
 * not the build scripts beside them, which read $SRC_DIR and which no test runs.
 */
function textsTheTestRuns(script: string, testTexts: Map<string, string>, recipeTexts: Map<string, string>): string {
  const read = [script, ...testTexts.values()];
  const left = new Map(recipeTexts);
  for (let more = true; more; ) {
    more = false;
    for (const [rel, text] of left) {
      const name = rel.split('/').pop() as string;
      if (read.some((t) => t.includes(name))) {
        read.push(text);
        left.delete(rel);
        more = true;
      }
    }
  }
  return read.join('\n');
}

const textsInto = (texts: Map<string, string>) => (rel: string, text: string) => {
  texts.set(rel, text);
};
