// How many of a real build's compiles the farm's allowlist accepts (the rest compile locally): lua 5.4 and
// libzstd from their Debian sources, built by their own Makefiles with Debian's build flags, every compile
// command logged by a wrapper and put through the same checks the syncer makes (classify, then mapArgs).
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { classify } from '../src/compiler/args.ts';
import { mapArgs, Refusal } from '../src/farm/policy.ts';
import { debianSource } from './debian-source.ts';

interface Tally {
  project: string;
  compiles: number;
  accepted: number;
  uncacheable: number;
  refused: Map<string, number>;
}

/** Debian's default build flags (dpkg-buildflags), as a package build would pass them. */
function debianFlags(): { CFLAGS: string; CPPFLAGS: string } {
  const get = (name: string) =>
    spawnSync('dpkg-buildflags', ['--get', name], { encoding: 'utf8' }).stdout?.trim() ||
    (name === 'CFLAGS'
      ? '-g -O2 -ffile-prefix-map=/build=. -fstack-protector-strong -Wformat -Werror=format-security'
      : '-Wdate-time -D_FORTIFY_SOURCE=2');
  return { CFLAGS: get('CFLAGS'), CPPFLAGS: get('CPPFLAGS') };
}

/** Runs `make` with CC logging each command (then compiling for real), and checks every compile. */
function tallyBuild(project: string, dir: string, makeArgs: string[], extraEnv: Record<string, string>): Tally {
  const work = mkdtempSync(join(tmpdir(), 'accel-bench-policy-'));
  try {
    const log = join(work, 'commands.log');
    const cc = join(work, 'cc');
    // One line per call: the working directory, then the arguments NUL-separated.
    writeFileSync(
      cc,
      `#!/bin/sh\n{ printf '%s' "$PWD"; for a in "$@"; do printf '\\0%s' "$a"; done; printf '\\n'; } >> '${log}'\nexec gcc "$@"\n`,
    );
    chmodSync(cc, 0o755);
    const r = spawnSync('make', ['-C', dir, ...makeArgs, `CC=${cc}`], {
      env: { ...process.env, ...extraEnv },
      encoding: 'utf8',
      maxBuffer: 1 << 26,
    });
    if (r.status !== 0) throw new Error(`make in ${dir} failed: ${r.stderr.slice(-2000)}`);
    const tally: Tally = { project, compiles: 0, accepted: 0, uncacheable: 0, refused: new Map() };
    for (const line of readFileSync(log, 'utf8').split('\n').filter(Boolean)) {
      const [cwd, ...args] = line.split('\0') as [string, ...string[]];
      const c = classify('gcc', args, cwd);
      if (c.kind === 'uncacheable') {
        if (c.reason !== 'linking') tally.uncacheable++;
        continue;
      }
      tally.compiles++;
      try {
        mapArgs({ args, cwd, roots: [dir], root: '/job' });
        tally.accepted++;
      } catch (err) {
        if (!(err instanceof Refusal)) throw err;
        const why = err.argument ?? err.code;
        tally.refused.set(why, (tally.refused.get(why) ?? 0) + 1);
      }
    }
    return tally;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

export async function benchFarmPolicy(print: (line: string) => void): Promise<void> {
  print('### Compiles the farm accepts in real builds\n');
  const flags = debianFlags();
  print(`- Debian's build flags: \`CFLAGS=${flags.CFLAGS}\`, \`CPPFLAGS=${flags.CPPFLAGS}\``);
  const tallies: Tally[] = [];
  const lua = debianSource('lua5.4', join(tmpdir(), 'accel-bench-lua'), 'lvm.c');
  if ('skipped' in lua) print(`- lua: skipped (${lua.skipped})`);
  else {
    // Each TU once with lua's own `linux` flags plus Debian's (Debian's libtool build would measure libtool).
    const objs = readdirC(lua.src).map((f) => f.replace(/\.c$/, '.o'));
    // Debian's luaconf.h includes a header its build generates.
    const multiarch = spawnSync('gcc', ['-print-multiarch'], { encoding: 'utf8' }).stdout.trim();
    writeFileSync(join(lua.src, 'lua5.4-deb-multiarch.h'), `#define DEB_HOST_MULTIARCH "${multiarch}"\n`);
    const mk = join(mkdtempSync(join(tmpdir(), 'accel-bench-luamk-')), 'Makefile');
    writeFileSync(
      mk,
      `CFLAGS += -std=gnu99 -Wall -Wextra -DLUA_COMPAT_5_3 -DLUA_USE_LINUX\nall: ${objs.join(' ')}\n%.o: %.c\n\t$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@\n`,
    );
    tallies.push(tallyBuild(`lua ${lua.version}`, lua.src, ['-f', mk, '-j2', '-B'], flags));
    rmSync(join(mk, '..'), { recursive: true, force: true });
  }
  const zstd = debianSource('libzstd', join(tmpdir(), 'accel-bench-libzstd'), 'lib/zstd.h');
  if ('skipped' in zstd) print(`- libzstd: skipped (${zstd.skipped})`);
  else {
    const lib = join(zstd.root, 'lib');
    tallies.push(tallyBuild(`libzstd ${zstd.version}`, lib, ['-j2', '-B', 'libzstd.a'], flags));
  }
  print('');
  print('| build | compiles | on the farm | % | uncacheable | refused (argument: compiles) |');
  print('| --- | ---: | ---: | ---: | ---: | --- |');
  for (const t of tallies) {
    const refused = [...t.refused].map(([a, n]) => `\`${a}\`: ${n}`).join(', ') || 'none';
    const pct = t.compiles ? ((100 * t.accepted) / t.compiles).toFixed(0) : '–';
    print(`| ${t.project} | ${t.compiles} | ${t.accepted} | ${pct} % | ${t.uncacheable} | ${refused} |`);
  }
  print('');
}

function readdirC(dir: string): string[] {
  // lua.c and luac.c are the programs; the library is the rest.
  return readdirSync(dir).filter((f) => f.endsWith('.c') && !/^(lua|luac)\.c$/.test(f));
}
