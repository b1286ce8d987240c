import type { Log } from '../../core/log.ts';
import type { Store } from '../../store/store.ts';

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
  env: NodeJS.ProcessEnv;
  allow: readonly string[];
  stallMs: number;
  /** Source overrides (`--source NAME=FILE`, conda.sources): feedstock or URL file name → local archive. */
  sources: Readonly<Record<string, string>>;
  tools: PackageTools;
  log: Log;
  /** A line per package as it starts and ends (the CLI prints it on a TTY). */
  onEvent?: (event: BuildEvent) => void;
}

export interface BuildEvent {
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
}
