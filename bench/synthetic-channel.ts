// A synthetic conda-forge channel for the solver benchmark (bench/conda-solve.ts): seeded, so every run solves the
// same channel. ≈100,000 linux-aarch64 records over ≈17,000 names with a heavy tail of versions per name, python
// extensions built per CPython minor, run-export pins (`>=1.2.3,<2.0a0`) rebuilt by migrations when a pinned
// library breaks its ABI, `__glibc` and `libgcc` requirements, constrains; and ≈10,000 noarch: python records.

export const TARGET = 'linux-aarch64';
const RECORDS = { [TARGET]: 100_000, noarch: 10_000 } as const;
const DAY = 86_400_000;
const T0 = Date.UTC(2016, 0, 1);
const T1 = Date.UTC(2026, 10, 1);
/** CPython minor → its release; conda-forge builds for a minor from its release (+ a 60-day migration) for 5 years. */
const PYTHONS = [6, 7, 8, 9, 10, 11, 12, 13].map((m) => ({ minor: m, release: Date.UTC(2016 + (m - 6), 9, 1) }));
const PY_LIFE = 5 * 365 * DAY;
const CORE = 300;

export type Kind = 'lib' | 'pyext' | 'noarch' | 'python' | 'python_abi';
type Form = 'pin' | 'loose' | 'bare';
export interface Name {
  index: number;
  name: string;
  kind: Kind;
  subdir: string;
  /** [major, minor, patch] with the time each was released, ascending. */
  versions: { v: number[]; time: number }[];
  deps: { target: Name; form: Form }[];
  constrains: Name[];
}
export interface Rec {
  name: Name;
  vi: number;
  build: string;
  build_number: number;
  timestamp: number;
  depends: string[];
  constrains: string[];
  /** Pinned deps: target name → the index of the version pinned as the lower bound. */
  pins: Map<Name, number>;
}

/** mulberry32: small, seeded, good enough to shape a channel. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `n` hex digits drawn from `rand` (hashes, build strings). */
function hexDigits(rand: () => number): (n: number) => string {
  return (n) => {
    let s = '';
    while (s.length < n)
      s += Math.floor(rand() * 2 ** 32)
        .toString(16)
        .padStart(8, '0');
    return s.slice(0, n);
  };
}

/** A synthetic conda-forge: the records per subdir, and the names in dependency order (deps have lower index). */
export function syntheticChannel(seed = 31): { names: Name[]; records: Map<Name, Rec[]> } {
  const rand = prng(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const hex = hexDigits(rand);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)] as T;
  const SYL = [
    'ba',
    'co',
    'da',
    'fe',
    'gi',
    'ho',
    'ju',
    'ka',
    'li',
    'mo',
    'nu',
    'pa',
    'ro',
    'sa',
    'te',
    'vi',
    'x',
    'zo',
    'an',
    'el',
    'or',
    'um',
  ];
  const taken = new Set<string>();
  const freshName = (prefix: string) => {
    for (;;) {
      let s = prefix;
      for (let k = int(2, 4); k > 0; k--) s += pick(SYL);
      if (!taken.has(s)) {
        taken.add(s);
        return s;
      }
    }
  };
  const names: Name[] = [];
  const records = new Map<Name, Rec[]>();
  const kinds: Record<Kind, Name[]> = { lib: [], pyext: [], noarch: [], python: [], python_abi: [] };
  /** The names of a kind from index `from` on (each list is in index order). */
  const since = (kind: Kind, from: number) => {
    const xs = kinds[kind];
    let lo = 0;
    let hi = xs.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((xs[mid] as Name).index < from) lo = mid + 1;
      else hi = mid;
    }
    return xs.slice(lo);
  };
  /** The newest version released by time t (the first when none was yet). */
  const latestAt = (n: Name, t: number) => {
    let lo = 0;
    let hi = n.versions.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((n.versions[mid] as { time: number }).time <= t) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  };
  const vstr = (n: Name, i: number) => (n.versions[i] as { v: number[] }).v.join('.');
  const spec = (d: Name, form: Form, t: number, pins: Map<Name, number>) => {
    const i = latestAt(d, t);
    const [a = 0, b = 0] = (d.versions[i] as { v: number[] }).v;
    if (form === 'bare') return d.name;
    if (form === 'loose') return `${d.name} >=${vstr(d, int(0, i))}`;
    pins.set(d, i);
    return `${d.name} >=${vstr(d, i)},<${a > 0 ? `${a + 1}.0a0` : `0.${b + 1}.0a0`}`;
  };
  const activePythons = (from: number, to: number) =>
    PYTHONS.filter((p) => p.release < to && p.release + PY_LIFE > from);

  const counts: Record<string, number> = { [TARGET]: 0, noarch: 0 };
  const add = (rec: Rec) => {
    const list = records.get(rec.name) ?? [];
    list.push(rec);
    records.set(rec.name, list);
    counts[rec.name.subdir] = (counts[rec.name.subdir] ?? 0) + 1;
  };
  const newName = (kind: Kind, name: string, nVersions: number): Name => {
    const index = names.length;
    const start = kind === 'python' ? T0 : T0 + (index / 21_000) * 0.8 * (T1 - T0) * (0.7 + 0.3 * rand());
    let v = [int(0, 3), int(0, 9), int(0, 5)];
    const versions = [];
    for (let k = 0; k < nVersions; k++) {
      versions.push({ v, time: Math.floor(start + ((k + 0.5 * rand()) / nVersions) * (T1 - 30 * DAY - start)) });
      const r = rand();
      v =
        r < 0.1
          ? [(v[0] ?? 0) + 1, 0, 0]
          : r < 0.45
            ? [v[0] ?? 0, (v[1] ?? 0) + 1, 0]
            : [v[0] ?? 0, v[1] ?? 0, (v[2] ?? 0) + 1];
    }
    const n: Name = {
      index,
      name,
      kind,
      subdir: kind === 'noarch' ? 'noarch' : TARGET,
      versions,
      deps: [],
      constrains: [],
    };
    names.push(n);
    kinds[kind].push(n);
    return n;
  };

  // python and python_abi: one series per minor, patch releases every ~2 months while it is built for.
  const python = newName('python', 'python', 0);
  const abi = newName('python_abi', 'python_abi', 0);
  // libgcc: GCC's releases; a compiled record needs the major it was built with (conda-forge's run export).
  const libgcc = newName('lib', 'libgcc', 0);
  for (const [v, year, month] of [
    [[7, 5, 0], 2016, 0],
    [[9, 3, 0], 2020, 2],
    [[10, 4, 0], 2021, 0],
    [[11, 2, 0], 2021, 9],
    [[12, 3, 0], 2022, 9],
    [[13, 2, 0], 2023, 8],
    [[14, 1, 0], 2024, 6],
    [[14, 2, 0], 2024, 10],
    [[15, 1, 0], 2025, 5],
  ] as const) {
    libgcc.versions.push({ v: [...v], time: Date.UTC(year, month) });
  }
  const gcc = (t: number) => `libgcc >=${(libgcc.versions[latestAt(libgcc, t)] as { v: number[] }).v[0]}`;
  libgcc.versions.forEach((lv, vi) => {
    for (let bn = 0; bn < 4; bn++) {
      const depends = lv.time > Date.UTC(2021, 6) ? ['__glibc >=2.17,<3.0.a0'] : [];
      const timestamp = lv.time + bn * 30 * DAY;
      add({
        name: libgcc,
        vi,
        build: `h${hex(8)}_${bn}`,
        build_number: bn,
        timestamp,
        depends,
        constrains: [],
        pins: new Map(),
      });
    }
  });
  for (const p of PYTHONS) {
    for (let patch = 0; patch < 20 && p.release + patch * 60 * DAY < T1; patch++) {
      python.versions.push({ v: [3, p.minor, patch], time: p.release + patch * 60 * DAY });
    }
    abi.versions.push({ v: [3, p.minor], time: p.release });
  }
  python.versions.sort((x, y) => x.time - y.time);
  python.versions.forEach((pv, vi) => {
    for (let bn = 0; bn < 3; bn++) {
      const depends = [gcc(pv.time), `python_abi ${pv.v.slice(0, 2).join('.')}.* *_cp3${pv.v[1]}`];
      add({
        name: python,
        vi,
        build: `h${hex(7)}_${bn}_cpython`,
        build_number: bn,
        timestamp: pv.time + bn * 20 * DAY,
        depends,
        constrains: [],
        pins: new Map(),
      });
    }
  });
  abi.versions.forEach((av, vi) => {
    const build = `5_cp3${av.v[1]}`;
    add({ name: abi, vi, build, build_number: 5, timestamp: av.time, depends: [], constrains: [], pins: new Map() });
  });

  // Every other name: a Pareto number of versions (alpha 1.6, capped at 300, a python extension at 120; the core
  // libraries 4× more), until each subdir has its records.
  while ((counts[TARGET] ?? 0) < RECORDS[TARGET] || (counts.noarch ?? 0) < RECORDS.noarch) {
    const noarch = (counts.noarch ?? 0) / RECORDS.noarch < (counts[TARGET] ?? 0) / RECORDS[TARGET];
    const kind: Kind = noarch ? 'noarch' : names.length > CORE && rand() < 0.15 ? 'pyext' : 'lib';
    const scale = names.length < CORE ? 4 : 1;
    const nVersions = Math.min(kind === 'pyext' ? 120 : 300, Math.floor(scale / rand() ** (1 / 1.6)));
    const prefix = kind === 'lib' && rand() < 0.4 ? 'lib' : kind === 'noarch' && rand() < 0.2 ? 'r-' : '';
    const n = newName(kind, freshName(prefix), nVersions);
    // The graph is shaped like conda-forge's: a few widely used core libraries (each with a small closure of its
    // own), and for the rest 0–2 dependencies on names shortly before (mean 0.9): long chains, yet environments
    // of tens to hundreds of packages, not the whole channel. libgcc (index 2) is every compiled record's own.
    const near = n.index - 1500;
    const isCore = n.index < CORE;
    const core = kinds.lib.slice(0, CORE).filter((d) => d.index > 2 && d.index < Math.min(CORE, n.index));
    const r0 = rand();
    const nLocal = kind === 'noarch' ? (r0 < 0.7 ? 1 : 2) : r0 < 0.3 ? 0 : r0 < 0.8 ? 1 : 2;
    const nCore = isCore || kind === 'noarch' ? 0 : int(0, 3);
    const local = () =>
      kind === 'noarch'
        ? [...since('noarch', near), ...since('pyext', near)]
        : kind === 'pyext' && rand() < 0.5
          ? since('pyext', near)
          : isCore
            ? core
            : since('lib', near).filter((d) => d.index > 2);
    const choose = (pool: Name[]) => {
      const target = pick(pool);
      if (!target || target === n || n.deps.some((d) => d.target === target)) return;
      const r = rand();
      const form: Form =
        kind === 'noarch' ? (r < 0.8 ? 'loose' : 'bare') : r < 0.6 ? 'pin' : r < 0.9 ? 'loose' : 'bare';
      n.deps.push({ target, form });
    };
    for (let k = 0; k < nCore; k++) choose(core);
    for (let k = 0; k < nLocal; k++) choose(local());
    if (rand() < 0.08 && core.length > 0) n.constrains.push(pick(core));
    generate(n);
  }

  function migrations(n: Name, after: number): number[] {
    const times = new Set<number>();
    for (const { target: d, form } of n.deps) {
      if (form !== 'pin') continue;
      d.versions.forEach(({ v, time }, k) => {
        const prev = (d.versions[k - 1] as { v: number[] } | undefined)?.v;
        const abi = prev && (v[0] !== prev[0] || (v[0] === 0 && v[1] !== prev[1]));
        if (abi && time > after) times.add(time + 20 * DAY);
      });
    }
    return [...times].sort((a, b) => a - b).slice(-3);
  }

  function generate(n: Name): void {
    n.versions.forEach((ver, vi) => {
      const until = n.versions[vi + 1]?.time ?? T1;
      const builds: { time: number; tag: string; py?: number }[] = [];
      if (n.kind === 'pyext') {
        for (const p of activePythons(ver.time, until)) {
          builds.push({ time: Math.max(ver.time, p.release + 60 * DAY), tag: `py3${p.minor}`, py: p.minor });
        }
      } else builds.push({ time: ver.time, tag: n.kind === 'noarch' ? 'pyhd8ed1ab' : '' });
      if (rand() < 0.3) builds.push(...builds.map((b) => ({ ...b, time: Math.min(T1, b.time + int(5, 90) * DAY) })));
      // conda-forge's migrations: when a pinned dependency breaks its ABI, the newest version is rebuilt against
      // it (the last three such rebuilds kept), so the newest builds of everything fit together, as upstream.
      if (vi === n.versions.length - 1) {
        for (const time of migrations(n, ver.time)) {
          if (n.kind !== 'pyext') builds.push({ time, tag: '' });
          for (const p of n.kind === 'pyext' ? activePythons(time, time + 1) : []) {
            builds.push({ time, tag: `py3${p.minor}`, py: p.minor });
          }
        }
      }
      const seen = new Map<string, number>();
      for (const b of builds) {
        const bn = seen.get(b.tag) ?? 0;
        seen.set(b.tag, bn + 1);
        const pins = new Map<Name, number>();
        const depends = n.deps.map((d) => spec(d.target, d.form, b.time, pins));
        if (n.kind === 'noarch') {
          const py = activePythons(b.time, b.time + 1)[0] ?? PYTHONS[0];
          depends.push(`python >=3.${py?.minor}`);
        } else {
          depends.push(gcc(b.time));
          if (b.time > Date.UTC(2021, 6)) depends.push('__glibc >=2.17,<3.0.a0');
          if (b.py) depends.push(`python >=3.${b.py},<3.${b.py + 1}.0a0`, `python_abi 3.${b.py}.* *_cp3${b.py}`);
        }
        const constrains = n.constrains.map((c) => spec(c, 'loose', b.time, new Map()));
        const hash = n.kind === 'noarch' ? '' : `h${hex(8)}`;
        add({
          name: n,
          vi,
          build: `${b.tag}${hash}_${bn}`,
          build_number: bn,
          timestamp: b.time,
          depends,
          constrains,
          pins,
        });
      }
    });
  }
  return { names, records };
}

/** One subdir's repodata.json as conda-forge writes it: old records as .tar.bz2 under packages, new as .conda. */
export function repodataJson(channel: ReturnType<typeof syntheticChannel>, subdir: string, seed = 7): Buffer {
  const rand = prng(seed);
  const hex = hexDigits(rand);
  const packages: Record<string, object> = {};
  const conda: Record<string, object> = {};
  for (const [n, recs] of channel.records) {
    if (n.subdir !== subdir) continue;
    for (const r of recs) {
      const version = (n.versions[r.vi] as { v: number[] }).v.join('.');
      const tarBz2 = r.timestamp < Date.UTC(2022, 0);
      const file = `${n.name}-${version}-${r.build}${tarBz2 ? '.tar.bz2' : '.conda'}`;
      (tarBz2 ? packages : conda)[file] = {
        build: r.build,
        build_number: r.build_number,
        ...(r.constrains.length ? { constrains: r.constrains } : {}),
        depends: r.depends,
        license: 'BSD-3-Clause',
        md5: hex(32),
        name: n.name,
        ...(subdir === 'noarch' ? { noarch: 'python' } : {}),
        sha256: hex(64),
        size: Math.floor(2000 + rand() ** 3 * 50_000_000),
        subdir,
        timestamp: r.timestamp,
        version,
      };
    }
  }
  return Buffer.from(JSON.stringify({ info: { subdir }, packages, 'packages.conda': conda, repodata_version: 1 }));
}
