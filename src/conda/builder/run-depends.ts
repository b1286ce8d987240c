import { type OutputRecord, specName } from '../record.ts';
import { compilerLanguage } from './cross-toolchain.ts';
import { starBareVersion } from './match.ts';

/** A host package's run_exports, as its info/run_exports.json has them. */
export interface HostExports {
  name: string;
  weak: string[];
  strong: string[];
}

export interface RunDependsInput {
  record: OutputRecord;
  /** run_exports of the host packages the output names in its `host` requirements (no others apply). */
  host: HostExports[];
  /** The major version of the toolchain's runtime (libgcc, libstdcxx); null when no gcc built the output. */
  runtimeMajor: string | null;
  /** The glibc its ELF files need, or null. */
  glibc: string | null;
}

/**
 * conda-build's `ignore_run_exports_from`: a package is passed over when its name occurs in the first word
 * of an entry (conda-build tests `name in entry.split(" ")[0]`, so `gxx_linux-aarch64 12` names gxx's).
 */
export function ignoresExportsFrom(record: OutputRecord, name: string): boolean {
  return record.ignore_run_exports.from_package.some((entry) => specName(entry).includes(name));
}

/** conda-build's `ignore_run_exports`: `*`, the exported spec itself, or its name followed by a space. */
export function ignoresExport(record: OutputRecord, spec: string): boolean {
  return record.ignore_run_exports.by_name.some((i) => i === '*' || spec === i || spec.startsWith(`${i} `));
}

/**
 * An output's run requirements as conda-build computes them (render.py add_upstream_pins): its own `run`,
 * the weak and strong run_exports of the host packages it names, and the strong ones of its build tools:
 * the compilers', whose runtime accel provides (`compiler('c')` exports libgcc, `compiler('cxx')` libstdcxx
 * and libgcc, at the version of the runtime the build linked against). A noarch output takes none of them
 * (conda-build gives it only a host package's `noarch` exports, which accel does not read). Either kind is
 * dropped by the output's ignore_run_exports and ignore_run_exports_from; an export of the output itself is
 * dropped. A package with ELF files gets a `__glibc` floor that is true of its binaries.
 */
export function runDepends({ record, host, runtimeMajor, glibc }: RunDependsInput): string[] {
  // conda-build writes run requirements as ensure_valid_spec makes them (`ncurses 6.5` → `ncurses 6.5.*`).
  const depends = record.requirements.run.map(starBareVersion);
  const add = (spec: string) => {
    const name = specName(spec);
    if (name === record.name || ignoresExport(record, spec)) return;
    const i = depends.findIndex((d) => specName(d) === name);
    if (i < 0) depends.push(spec);
    else if (depends[i]?.trim() === name) depends[i] = spec;
  };
  if (record.noarch === null) {
    const named = new Set(record.requirements.host.map(specName));
    for (const p of host) {
      if (!named.has(p.name) || ignoresExportsFrom(record, p.name)) continue;
      for (const spec of [...p.weak, ...p.strong]) add(spec);
    }
    const languages = new Set(
      record.requirements.build
        .map(specName)
        .filter((name) => !ignoresExportsFrom(record, name))
        .map(compilerLanguage),
    );
    if (runtimeMajor) {
      if (languages.has('c') || languages.has('cxx')) add(`libgcc >=${runtimeMajor}`);
      if (languages.has('cxx')) add(`libstdcxx >=${runtimeMajor}`);
    }
  }
  if (glibc) add(`__glibc >=${glibc},<3.0.a0`);
  return [...new Set(depends)].sort();
}
