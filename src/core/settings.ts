import * as z from 'zod/mini';
import { COMPILER_NAMES } from './compiler-names.ts';
import { parseRemoteTiers, RemoteSpecProblem } from './remote-tiers.ts';
import { parseSize } from './size.ts';

/*
 * One schema for config.json; strict objects everywhere so a misspelt key is an error naming its path rather
 * than a setting silently ignored. zod gives us the path of every problem, which is what the message needs;
 * zod/mini is its tree-shakable form (full zod was 440 KB of a 590 KB bundle, parsed at every start).
 */
const sizeString = z.string().check(
  z.refine(
    (s) => {
      try {
        parseSize(s);
        return true;
      } catch {
        return false;
      }
    },
    { message: 'expected a size such as 500M or 10G' },
  ),
);

/** What the docs table and the error messages say of a setting; attached to its schema, read by walking it. */
interface SettingMeta {
  /** What it does, one line (the docs table's last column). */
  doc: string;
  /** The value a user must give, in words: "a whole number from 0 to 65535". */
  type: string;
  /** The flag that overrides it, if any. */
  flag?: string;
  /** Its variable when not the one its key spells (`ACCEL_CC_BASEDIRS`, after ccache's `CCACHE_BASEDIR`). */
  env?: string;
}

const META = z.registry<SettingMeta>();

/** A setting: its schema with its default, and what the docs and errors say of it. */
function setting<T extends z.core.SomeType>(schema: T, fallback: z.core.output<T>, meta: SettingMeta) {
  // biome-ignore lint/suspicious/noExplicitAny: zod's default() typing needs the inner output type
  const withDefault = z._default(schema as any, fallback as any) as unknown as z.ZodMiniDefault<T>;
  META.add(withDefault, meta);
  return withDefault;
}

const port = () => z.number().check(z.int(), z.gte(0), z.lte(65535));
const PORT = 'a whole number from 0 to 65535';
const seconds = () => z.number().check(z.gt(0));
const SECONDS = 'a number of seconds > 0';
const name = () => z.string().check(z.regex(/^[A-Za-z0-9._-]+$/));
const strings = () => z.array(z.string());

const MirrorSchema = z.strictObject({
  port: setting(port(), 8000, {
    type: PORT,
    flag: '--port',
    doc: 'where `accel mirror serve` listens (0: any free port)',
  }),
  bind: setting(z.string(), '127.0.0.1', { type: 'an address', flag: '--bind', doc: 'the address it listens on' }),
  grpcPort: setting(z.union([port(), z.string().check(z.regex(/^\d{0,5}$/))]), '', {
    type: `${PORT}, or empty`,
    flag: '--grpc-port',
    doc: 'where `accel mirror serve` also serves gRPC: the REAPI CAS and action cache and the Remote Asset API, for Bazel’s `--experimental_remote_downloader` and `--remote_cache` (same bind address and tokens; 0: any free port); empty: off',
  }),
  token: setting(z.string(), '', {
    type: 'a string',
    flag: '--token',
    doc: 'bearer token every request must carry; empty: none',
  }),
  ttl: setting(z.number().check(z.gte(0)), 3600, {
    type: 'a number of seconds ≥ 0',
    doc: 'seconds before mutable content is revalidated with its upstream',
  }),
  negativeTtl: setting(z.number().check(z.gte(0)), 60, {
    type: 'a number of seconds ≥ 0',
    doc: 'seconds an upstream’s 404 or 410 is answered from memory before asking again; offline, always',
  }),
  stallTimeout: setting(seconds(), 30, {
    type: SECONDS,
    doc: 'seconds without a byte from an upstream before a download is aborted (and resumed where possible)',
  }),
  remaps: setting(
    z.record(name(), strings()),
    {},
    {
      type: 'an object: name → list of base URLs',
      doc: 'upstreams for `/r/<name>/<path>`, tried in order',
    },
  ),
  immutable: setting(strings(), [], {
    type: 'a list of regular expressions',
    doc: 'upstream URLs whose content never changes (never revalidated)',
  }),
  allow: setting(strings(), [], {
    type: 'a list of host or host:port',
    flag: '--allow',
    doc: 'upstreams allowed although they resolve to private or loopback addresses',
  }),
  proxyHosts: setting(strings(), [], {
    type: 'a list of host names',
    doc: 'hosts served in forward-proxy mode (`Acquire::http::Proxy`) besides the remaps’ upstreams',
  }),
  condaChannels: setting(
    z.record(name(), z.string()),
    {},
    {
      type: 'an object: name → directory',
      doc: 'local conda channels served read-only at `/conda/<name>/`',
    },
  ),
  parent: setting(z.string(), '', {
    type: 'a URL',
    flag: '--parent',
    doc: 'a parent accel mirror asked for every miss (same paths, same remap names), e.g. `http://central:8000`; empty: none',
  }),
  parentToken: setting(z.string(), '', {
    type: 'a string',
    doc: 'bearer token sent to the parent mirror (its `mirror.token`), to it only; empty: none',
  }),
});

const remoteShard = z.union([z.string(), z.strictObject({ url: z.string(), weight: z.optional(z.number()) })]);
const remoteTier = z.union([
  z.string(),
  z.strictObject({
    url: z.optional(z.string()),
    shards: z.optional(z.array(remoteShard)),
    token: z.optional(z.string()),
  }),
]);
/** The tiers' syntax is checked here, so a bad one stops at load with what is wrong (params, for configError). */
const remoteTiers = z.union([z.string(), z.array(remoteTier)]).check(
  z.superRefine((value, ctx) => {
    const parsed = parseRemoteTiers(value);
    if (!(parsed instanceof RemoteSpecProblem)) return;
    ctx.issues.push({
      code: 'custom',
      input: value,
      path: parsed.path,
      message: parsed.problem,
      params: {
        problem: parsed.problem,
        hint: 'the syntax is in docs/cc.md, “Several cache servers: tiers and shards”',
      },
    });
  }),
);

const CcSchema = z.strictObject({
  remote: setting(remoteTiers, '', {
    type: 'a URL, or tiers: URLs or shard sets (see docs/cc.md)',
    doc: 'shared build caches in Bazel’s HTTP layout, e.g. `http://build-cache:8000/cache`; several: tiers read in order, each one server or shards (`http://cache-*:8000/cache|shards=a,b(2)`), separated by spaces in the variable; empty: none',
  }),
  remoteToken: setting(z.string(), '', {
    type: 'a string',
    doc: 'bearer token for the remote caches (those tiers of `cc.remote` without a `token` of their own)',
  }),
  baseDirs: setting(
    z.union([z.string(), z.array(z.string())]).check(
      z.refine((v) => (typeof v === 'string' ? v.split(':') : v).every((d) => d === '' || d.startsWith('/')), {
        message: 'expected absolute directories',
      }),
    ),
    '',
    {
      type: 'absolute directories, `:`-separated in the variable',
      env: 'ACCEL_CC_BASEDIRS',
      doc: 'base directories (ccache’s `base_dir`): paths under them enter the cache key relative to the working directory, so checkouts at different paths share results (see docs/cc.md); empty: none',
    },
  ),
  explain: setting(z.string(), '', {
    type: '1, or a file',
    doc: 'why each compile missed, one line per miss: `1` appends to `run/cc-explain.log` under the home, a path to that file; empty: off',
  }),
  daemonIdleTimeout: setting(seconds(), 600, {
    type: SECONDS,
    flag: '--idle-timeout',
    doc: 'seconds without a request before the cc daemon exits (it starts again on demand)',
  }),
});

const FarmSchema = z.strictObject({
  syncer: setting(z.string(), '', {
    type: 'a URL (https://HOST:5000)',
    flag: '--syncer',
    doc: 'the syncer; when set, `accel cc` sends cache misses to the farm',
  }),
  reapi: setting(z.string(), '', {
    type: 'a URL (grpcs://HOST:5001, or grpc:// without TLS)',
    doc: 'a Remote Execution API engine; when set, `accel cc` sends cache misses there as REAPI actions (instead of `farm.syncer`)',
  }),
  reapiToken: setting(z.string(), '', {
    type: 'a string',
    doc: 'bearer token sent to `farm.reapi` (engines that take API keys instead of client certificates)',
  }),
  reapiHeaders: setting(strings(), [], {
    type: 'a list of NAME=VALUE',
    doc: 'request headers sent to `farm.reapi`, e.g. an engine’s API-key header',
  }),
  reapiInstance: setting(z.string(), '', {
    type: 'a string',
    doc: 'the REAPI instance name, when the engine wants one',
  }),
  reapiPlatform: setting(strings(), [], {
    type: 'a list of NAME=VALUE',
    doc: 'platform properties of `accel cc`’s actions, e.g. OSFamily=Linux or container-image=docker://IMAGE',
  }),
  port: setting(port(), 5000, { type: PORT, flag: '--port', doc: 'where `accel syncer` listens' }),
  reapiPort: setting(port(), 5001, {
    type: PORT,
    flag: '--reapi-port',
    doc: 'where `accel syncer` serves the Remote Execution API (gRPC, same mutual TLS)',
  }),
  reapiRun: setting(z.enum(['compilers', 'any']), 'compilers', {
    type: '`compilers` or `any`',
    flag: '--reapi-run',
    doc: 'what the syncer’s REAPI actions may run: `compilers` (allowed compilers, linkers, ar, strip with checked arguments; anything else is refused and Bazel runs it locally) or `any` (any command, inside the worker’s sandbox: every client-certificate holder runs code there)',
  }),
  bind: setting(z.string(), '127.0.0.1', {
    type: 'an address',
    flag: '--bind',
    doc: 'the address the syncer (and a worker’s /status) listens on',
  }),
  dirs: setting(strings(), [], {
    type: 'a list of absolute paths',
    flag: '--dir',
    doc: 'include roots the syncer snapshots and ships to workers',
  }),
  cores: setting(z.number().check(z.int(), z.gte(0)), 0, {
    type: 'a whole number ≥ 0',
    flag: '--cores',
    doc: 'jobs a worker runs at once; 0: one per CPU',
  }),
  statusPort: setting(port(), 8443, { type: PORT, flag: '--status-port', doc: 'where a worker serves /status' }),
  startTimeout: setting(seconds(), 10, {
    type: SECONDS,
    doc: 'seconds a job may wait for a worker before the client compiles it locally',
  }),
  jobTimeout: setting(seconds(), 300, { type: SECONDS, doc: 'seconds a compile may run on a worker' }),
  lease: setting(seconds(), 15, {
    type: SECONDS,
    doc: 'seconds a worker’s lease on a job lasts without a heartbeat before another worker gets the job',
  }),
  compilers: setting(strings(), [...COMPILER_NAMES], {
    type: 'a list of compiler names',
    doc: 'compilers a worker runs (from its PATH) and the syncer accepts, with GNU cross compilers of them',
  }),
});

const CondaSchema = z.strictObject({
  sources: setting(
    z.record(z.string(), z.string()),
    {},
    {
      type: 'an object: feedstock or file name → file',
      flag: '--source',
      doc: 'source archives used instead of a recipe’s URL; every use is warned about and recorded',
    },
  ),
  sysroot: setting(z.enum(['pinned', 'machine']), 'pinned', {
    type: 'pinned or machine',
    doc: 'what a cross build with a `c_stdlib_version` links against: `pinned`, the oldest glibc accel pins for the target (Debian 11’s arm64 cross libc, glibc 2.31, fetched once into the store), or `machine`, the cross libc installed on this machine',
  }),
  mirror: setting(z.string(), '', {
    type: 'a URL',
    doc: 'an accel mirror the builder fetches through (`<mirror>/<scheme>/<host>/<path>`): the pinned sysroot’s .debs, and upstream channels’ repodata and packages; e.g. `http://127.0.0.1:8000`; empty: from the archive or channel directly',
  }),
  upstreamChannels: setting(strings(), [], {
    type: 'a list of channel URLs',
    flag: '--upstream-channel',
    doc: 'channels `conda build` solves against after the local one, in priority order (their `<target>`, `noarch` and, for build tools, this machine’s subdir), fetched through `conda.mirror` when set and kept in the store',
  }),
  debianArchive: setting(z.string(), '', {
    type: 'a URL',
    doc: 'the Debian archive the pinned sysroot’s .debs come from (the directory holding `pool/`); empty: the first `…/debian` URI of this machine’s apt sources',
  }),
});

const StoreSchema = z.strictObject({
  maxSize: setting(sizeString, '10G', {
    type: 'a size such as 500M or 10G',
    flag: '--max-size',
    doc: 'the store’s limit: every server (mirror, syncer, worker, cc daemon) keeps it while it runs, and `accel store gc` shrinks to it',
  }),
  highWater: setting(z.number().check(z.gt(0), z.lte(100)), 95, {
    type: 'a percentage from 0 to 100',
    doc: 'a server starts evicting least recently used blobs when the store passes this share of `store.maxSize`',
  }),
  lowWater: setting(z.number().check(z.gt(0), z.lte(100)), 85, {
    type: 'a percentage from 0 to 100',
    doc: '… and evicts down to this share',
  }),
  shared: setting(z.boolean(), false, {
    type: 'true or false',
    doc: 'a store shared by a group (directories 2770, index 0660); otherwise private (0700/0600)',
  }),
  verifyHits: setting(z.enum(['always', 'changed']), 'always', {
    type: 'always or changed',
    doc: 'when a server re-hashes a blob it serves whole: always, or only when the file changed since (ZFS, btrfs)',
  }),
});

/** config.json as a whole; config.ts loads and checks a file against it. */
export const ConfigSchema = z.strictObject({
  cc: z.prefault(CcSchema, {}),
  conda: z.prefault(CondaSchema, {}),
  farm: z.prefault(FarmSchema, {}),
  mirror: z.prefault(MirrorSchema, {}),
  store: z.prefault(StoreSchema, {}),
});

/** One row per setting, walked from the schema: the docs table, the known-keys hint and the env names. */
export interface SettingInfo extends SettingMeta {
  key: string;
  /** The ACCEL_* variable that overrides it; lists and objects have none (config.json only). */
  env?: string;
  kind: 'number' | 'string' | 'boolean' | 'enum' | 'array' | 'record' | 'union';
  fallback: unknown;
}

type Def = {
  type: string;
  innerType?: { _zod: { def: Def } };
  shape?: Record<string, { _zod: { def: Def } }>;
  options?: readonly { _zod: { def: Def } }[];
};

export const SETTINGS: readonly SettingInfo[] = (() => {
  const rows: SettingInfo[] = [];
  const sections = (ConfigSchema._zod.def as Def).shape ?? {};
  for (const [section, wrapped] of Object.entries(sections)) {
    const shape = (wrapped._zod.def.innerType?._zod.def ?? wrapped._zod.def).shape ?? {};
    for (const [key, schema] of Object.entries(shape)) {
      const meta = META.get(schema as z.core.$ZodType) as SettingMeta;
      const def = schema._zod.def as Def & { defaultValue: unknown };
      const kind = (def.innerType?._zod.def.type ?? def.type) as SettingInfo['kind'];
      // A union that takes a string (cc.remote: a URL or a list) takes its variable as that string.
      const inner = def.innerType?._zod.def ?? def;
      const scalar =
        kind === 'number' ||
        kind === 'string' ||
        kind === 'boolean' ||
        kind === 'enum' ||
        (kind === 'union' && (inner.options ?? []).some((o) => o._zod.def.type === 'string'));
      const env = `ACCEL_${section}_${key.replace(/[A-Z]/g, (c) => `_${c}`)}`.toUpperCase();
      rows.push({
        ...meta,
        key: `${section}.${key}`,
        env: scalar ? (meta.env ?? env) : undefined,
        kind,
        fallback: def.defaultValue,
      });
    }
  }
  return rows;
})();

/**
 * The settings (of one section, or all) as a Markdown table. The docs hold these tables between
 * `<!-- settings SECTION -->` and `<!-- end settings -->`; `npm run docs:settings` rewrites them and a test
 * keeps them equal to this.
 */
export function settingsTable(section?: string): string {
  const cell = (s: string) => s.replaceAll('|', '\\|');
  const shown = (v: unknown) =>
    Array.isArray(v) && v.length > 0 ? v.join(' ') : v === '' ? 'none' : typeof v === 'string' ? v : JSON.stringify(v);
  return [
    '| config.json key | variable | flag | value | default | what it does |',
    '| --- | --- | --- | --- | --- | --- |',
    ...SETTINGS.filter((s) => section === undefined || s.key.startsWith(`${section}.`)).map(
      (s) =>
        `| \`${s.key}\` | ${s.env ? `\`${s.env}\`` : ''} | ${s.flag ? `\`${s.flag}\`` : ''} | ${cell(s.type)} | ${cell(shown(s.fallback))} | ${cell(s.doc)} |`,
    ),
  ].join('\n');
}
