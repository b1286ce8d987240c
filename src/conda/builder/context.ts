import type { Log } from '../../core/log.ts';
import type { Store } from '../../store/store.ts';
import type { UpstreamChannel } from '../solve/upstream.ts';

export type TestMode = 'native' | 'emulated' | 'skip';

/** Installing packages and publishing them: condapkg's installer and channel index, passed in. */
export interface PackageTools {
  install(file: string, prefix: string): Promise<void>;
  /** Copies the package into the channel and rewrites that subdir's repodata.json atomically. */
  publish(channel: string, file: string): Promise<void>;
  /** The package's info/run_exports.json (`{weak, strong}`), empty when it has none. */
  runExports(file: string): Promise<{ weak: string[]; strong: string[] }>;
}

/** Everything a build needs besides the recipe: resolved once per `accel conda build`. */
export interface BuildContext {
  store: Store;
  channel: string;
  targetPlatform: string;
  test: TestMode;
  /** Tests that passed before with the same inputs are not run again (`--no-test-cache` turns it off). */
  testCache: boolean;
  /** Build scripts that ran before with the same inputs are not run again (`--no-build-cache` turns it off). */
  buildCache: boolean;
  env: NodeJS.ProcessEnv;
  allow: readonly string[];
  stallMs: number;
  /** conda.sysroot: link cross builds against the pinned old glibc, or the machine's cross libc. */
  sysroot: 'pinned' | 'machine';
  /** The Debian archive (the URL holding pool/) the pinned sysroot's .debs come from; empty: none known. */
  debianArchive: string;
  /** conda.mirror: the accel mirror those .debs are fetched through; empty: the archive directly. */
  condaMirror: string;
  /**
   * Channels packages come from besides the local one, in priority order (`--upstream-channel`,
   * conda.upstreamChannels): host, test and build environments are solved against the local channel first.
   */
  upstreams: UpstreamChannel[];
  /** `--skip-existing`: an output whose name-version-build a channel already has is not built again. */
  skipExisting: boolean;
  /** Source overrides (`--source NAME=FILE`, conda.sources): feedstock or URL file name → local archive. */
  sources: Readonly<Record<string, string>>;
  tools: PackageTools;
  /** The compile cache the build scripts' compilers go through, or null (`--no-cc-cache`). */
  cc: CompileCache | null;
  log: Log;
  /** A line per package as it starts and ends (the CLI prints it on a TTY). */
  onEvent?: (event: BuildEvent) => void;
}

/** accel's compile cache as a conda build uses it: the native client, and the daemon it talks to. */
export interface CompileCache {
  /** `$ACCEL_HOME/bin/accel-cc`: the compiler names in $BUILD_PREFIX/bin link to it. */
  client: string;
  /** Starts the cc daemon (once) before a build script runs, so it lives outside the build's namespace. */
  start(): Promise<void>;
  /** The tallied outcomes of the compiles tagged `tag`, removed from the store's counters. */
  take(tag: string): CacheTally;
}

export interface CacheTally {
  hit: number;
  miss: number;
  uncacheable: number;
  failed: number;
}

interface BuildEvent {
  feedstock: string;
  state: 'start' | 'built' | 'skipped' | 'failed' | 'blocked';
  detail?: string;
}

export interface BuiltPackage {
  name: string;
  filename: string;
  subdir: string;
  sha256: string;
  size: number;
}

export interface FeedstockResult {
  feedstock: string;
  status: 'built' | 'skipped' | 'failed' | 'blocked';
  packages: BuiltPackage[];
  /** The digest of the full log in the store (the previous build's log when skipped). */
  log: string | null;
  /** Wall time of this run for the feedstock, and the part spent in build and test scripts. */
  seconds: number;
  scriptSeconds: number;
  error?: { code: string; message: string };
  key: string | null;
  /** The compile cache's outcomes for this feedstock's build scripts (null without the cache, or on a hit). */
  cc?: CacheTally | null;
  /** How many outputs' tests ran, and how many had passed before with the same inputs (not run again). */
  tests?: TestTally;
  /** How many build scripts ran, and how many had run before with the same inputs (their files put back). */
  scripts?: ScriptTally;
  /** `--skip-existing`: each output, and the channel that has it already (nothing was built). */
  exists?: string[];
}

export interface ScriptTally {
  run: number;
  reused: number;
}

export interface TestTally {
  run: number;
  cached: number;
}
