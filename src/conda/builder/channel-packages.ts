import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { errnoCode } from '../../core/errors.ts';
import { compareVersions, type MatchSpec, parseSpec, specMatches } from './match.ts';

/** A package in a local channel, as its subdir's repodata.json lists it. */
export interface ChannelPackage {
  subdir: string;
  filename: string;
  name: string;
  version: string;
  build: string;
  build_number: number;
  depends: string[];
  sha256: string;
  timestamp: number;
}

/** The packages of `<channel>/<subdir>/repodata.json` for each subdir; a missing file is an empty subdir. */
export function readChannel(channel: string, subdirs: string[]): ChannelPackage[] {
  const out: ChannelPackage[] = [];
  for (const subdir of subdirs) {
    let text: string;
    try {
      text = readFileSync(join(channel, subdir, 'repodata.json'), 'utf8');
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') continue;
      throw err;
    }
    const repodata = JSON.parse(text) as { packages?: object; 'packages.conda'?: object };
    for (const [filename, r] of [
      ...Object.entries(repodata['packages.conda'] ?? {}),
      ...Object.entries(repodata.packages ?? {}),
    ]) {
      const rec = r as Partial<ChannelPackage>;
      out.push({
        subdir,
        filename,
        name: String(rec.name),
        version: String(rec.version),
        build: String(rec.build),
        build_number: Number(rec.build_number ?? 0),
        depends: rec.depends ?? [],
        sha256: String(rec.sha256),
        timestamp: Number(rec.timestamp ?? 0),
      });
    }
  }
  return out;
}

function newer(a: ChannelPackage, b: ChannelPackage): number {
  return compareVersions(a.version, b.version) || a.build_number - b.build_number || a.timestamp - b.timestamp;
}

/**
 * Picks packages for `specs` and, transitively, their dependencies: the newest match of each name, one per
 * name (a greedy solve, enough for a channel built from one set of feedstocks). Specs that nothing matches
 * come back in `unsatisfied`, with the package that asked for them. `virtual` is the machine the environment
 * runs on, as conda's virtual packages say it (`{ __glibc: '2.31' }`): a package whose `__glibc >=2.35`
 * that machine does not meet is not a candidate (a libgcc 12.2.0 beside the 10.2.1 that loads there).
 * Virtual packages it does not name are assumed present.
 */
export function solve(
  specs: string[],
  channel: ChannelPackage[],
  virtual: Readonly<Record<string, string>> = {},
): { packages: ChannelPackage[]; unsatisfied: string[] } {
  const runs = (p: ChannelPackage) =>
    p.depends.every((d) => {
      const spec = parseSpec(d);
      const version = virtual[spec.name];
      return version === undefined || specMatches({ ...spec, build: null }, { name: spec.name, version, build: '0' });
    });
  const chosen = new Map<string, ChannelPackage>();
  const unsatisfied: string[] = [];
  const queue: { spec: MatchSpec; text: string; from: string | null }[] = specs.map((s) => ({
    spec: parseSpec(s),
    text: s,
    from: null,
  }));
  for (let item = queue.shift(); item; item = queue.shift()) {
    const have = chosen.get(item.spec.name);
    if (have) {
      if (!specMatches(item.spec, have)) {
        unsatisfied.push(
          `${item.text}${item.from ? ` (needed by ${item.from})` : ''}, conflicts with ${have.filename}`,
        );
      }
      continue;
    }
    const spec = item.spec;
    const fits = channel.filter((p) => specMatches(spec, p) && runs(p)).sort(newer);
    // The newest candidate whose own dependencies do not contradict what is chosen already.
    const pick = fits.at(-1);
    if (!pick) {
      unsatisfied.push(`${item.text}${item.from ? ` (needed by ${item.from})` : ''}`);
      continue;
    }
    chosen.set(pick.name, pick);
    for (const d of pick.depends) {
      if (d.startsWith('__')) continue;
      queue.push({ spec: parseSpec(d), text: d, from: pick.filename });
    }
  }
  return { packages: [...chosen.values()].sort((a, b) => a.name.localeCompare(b.name)), unsatisfied };
}
