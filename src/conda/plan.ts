import { isCompilerPackage, isMachineTool, TOOLCHAIN_RUNTIME } from './build-tools.ts';
import { specName } from './record.ts';
import type { RenderFailure } from './render-set.ts';
import type { RenderedRecipe } from './render-variants.ts';

/** The build order of a set of feedstocks (conda-forge's bot graph: one node per feedstock). */
export interface BuildPlan {
  feedstocks: { name: string; outputs: string[]; needs: string[] }[];
  /** `from` must be built before `to`, because `to` needs the packages in `via` to build or to test. */
  edges: { from: string; to: string; via: string[] }[];
  /** Every feedstock, dependencies first; members of a cycle are adjacent. */
  order: string[];
  /** Feedstocks that can build at the same time: each level only needs earlier levels. */
  levels: string[][];
  /** Feedstocks that need each other (directly or through others); each must be bootstrapped to build. */
  cycles: string[][];
  /** Build and host requirements no given feedstock provides, with who needs them. */
  external: { name: string; needed_by: string[] }[];
  /** Build tools and compilers the build machine provides, with who needs them: never edges. */
  machine: { name: string; needed_by: string[] }[];
  /** Packages that more than one feedstock provides; the first (by name) is used. */
  duplicates: { name: string; feedstocks: string[] }[];
  /** Feedstocks that did not render (with --keep-going), and the feedstocks that need a package named like them. */
  failed: { feedstock: string; error: { code: string; message: string }; needed_by: string[] }[];
}

/**
 * The one feedstock graph, for `conda plan` and `conda build` alike. A package's provider is the first
 * feedstock by name that makes it (independent of the order the feedstocks were given). A feedstock waits for
 * the providers of its build and host requirements, and of its outputs' run and test requirements: a test
 * environment is solved from the channel, so what it runs with is built first.
 */
export function feedstockGraph(recipes: RenderedRecipe[]): {
  sorted: RenderedRecipe[];
  /** feedstock → (provider → the package names it provides to it) */
  deps: Map<string, Map<string, Set<string>>>;
  external: Map<string, Set<string>>;
  providers: Map<string, string[]>;
} {
  const provider = new Map<string, string>();
  const providers = new Map<string, string[]>();
  const sorted = [...recipes].sort((a, b) => a.feedstock.localeCompare(b.feedstock));
  for (const r of sorted) {
    for (const name of new Set(r.records.map((o) => o.name))) {
      if (!provider.has(name)) provider.set(name, r.feedstock);
      providers.set(name, [...(providers.get(name) ?? []), r.feedstock]);
    }
  }
  const deps = new Map<string, Map<string, Set<string>>>();
  const external = new Map<string, Set<string>>();
  for (const r of sorted) {
    const mine = new Map<string, Set<string>>();
    deps.set(r.feedstock, mine);
    for (const name of feedstockNeeds(r)) {
      const from = provider.get(name);
      if (from === undefined) {
        // Only build and host requirements are reported as external: run and test ones come from the channel.
        if (r.buildRequires.some((q) => specName(q) === name)) {
          external.set(name, (external.get(name) ?? new Set()).add(r.feedstock));
        }
      } else if (from !== r.feedstock) mine.set(from, (mine.get(from) ?? new Set()).add(name));
    }
  }
  return { sorted, deps, external, providers };
}

/**
 * The package names a feedstock needs from other feedstocks: its build and host requirements and its outputs'
 * run and test requirements, less what the build machine provides (tools, compilers, the toolchain's runtime).
 */
export function feedstockNeeds(r: RenderedRecipe): Set<string> {
  return new Set([
    ...r.buildRequires.map(specName),
    ...r.records.flatMap((o) => [
      ...o.requirements.run.map(specName).filter((n) => !TOOLCHAIN_RUNTIME.has(n)),
      // A test may need make or a compiler to build a test program: the machine's, like the build's.
      ...o.test.requires.map(specName).filter((n) => !isMachineTool(n) && !isCompilerPackage(n)),
    ]),
  ]);
}

export function planBuilds(recipes: RenderedRecipe[], failed: RenderFailure[] = []): BuildPlan {
  const { sorted, deps, external, providers } = feedstockGraph(recipes);
  const nodes = sorted.map((r) => r.feedstock);
  const components = stronglyConnected(nodes, (n) => [...(deps.get(n)?.keys() ?? [])]);
  // Tarjan emits components dependencies first, so each one's level follows from those already placed.
  const levelOf = new Map<string, number>();
  for (const comp of components) {
    let level = 0;
    for (const n of comp) {
      for (const d of deps.get(n)?.keys() ?? []) {
        if (!comp.includes(d)) level = Math.max(level, (levelOf.get(d) as number) + 1);
      }
    }
    for (const n of comp) levelOf.set(n, level);
  }
  const levels: string[][] = [];
  for (const comp of components) {
    const level = levelOf.get(comp[0] as string) as number;
    while (levels.length <= level) levels.push([]);
    (levels[level] as string[]).push(...comp);
  }
  for (const l of levels) l.sort();
  const cycles = components.filter((c) => c.length > 1).map((c) => [...c].sort());
  // Order by level; within a level, cycle members stay together.
  const inCycle = new Map(cycles.flatMap((c) => c.map((n) => [n, c[0] as string] as const)));
  const order = levels.flatMap((l) =>
    [...l].sort((a, b) => (inCycle.get(a) ?? a).localeCompare(inCycle.get(b) ?? b) || a.localeCompare(b)),
  );
  return {
    feedstocks: sorted.map((r) => ({
      name: r.feedstock,
      outputs: [...new Set(r.records.map((o) => o.name))].sort(),
      needs: [...(deps.get(r.feedstock)?.keys() ?? [])].sort(),
    })),
    edges: sorted.flatMap((r) =>
      [...(deps.get(r.feedstock) ?? new Map<string, Set<string>>())]
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([from, via]) => ({ from, to: r.feedstock, via: [...via].sort() })),
    ),
    order,
    levels,
    cycles,
    external: [...external]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, by]) => ({ name, needed_by: [...by].sort() })),
    machine: byName(sorted.flatMap((r) => r.machineRequires.map((name) => [name, r.feedstock] as const))),
    duplicates: [...providers]
      .filter(([, f]) => f.length > 1)
      .map(([name, feedstocks]) => ({ name, feedstocks }))
      .sort((a, b) => a.name.localeCompare(b.name)),
    failed: failed.map((f) => ({
      feedstock: f.feedstock,
      error: { code: f.error.code, message: f.error.message },
      needed_by: [...(external.get(f.feedstock) ?? [])].sort(),
    })),
  };
}

function byName(pairs: (readonly [string, string])[]): { name: string; needed_by: string[] }[] {
  const m = new Map<string, Set<string>>();
  for (const [name, by] of pairs) m.set(name, (m.get(name) ?? new Set()).add(by));
  return [...m].sort(([a], [b]) => a.localeCompare(b)).map(([name, by]) => ({ name, needed_by: [...by].sort() }));
}

/**
 * Tarjan's strongly connected components, iteratively (conda-forge has ~25,000 feedstocks: recursion that deep
 * would overflow the stack). Components come out in reverse topological order: dependencies first.
 */
export function stronglyConnected(nodes: string[], next: (n: string) => string[]): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const out: string[][] = [];
  let counter = 0;
  for (const root of nodes) {
    if (index.has(root)) continue;
    const work: { node: string; edges: string[]; i: number }[] = [];
    const visit = (n: string) => {
      index.set(n, counter);
      low.set(n, counter++);
      stack.push(n);
      onStack.add(n);
      work.push({ node: n, edges: next(n), i: 0 });
    };
    visit(root);
    while (work.length > 0) {
      const frame = work[work.length - 1] as (typeof work)[number];
      if (frame.i < frame.edges.length) {
        const m = frame.edges[frame.i++] as string;
        if (!index.has(m)) visit(m);
        else if (onStack.has(m)) low.set(frame.node, Math.min(low.get(frame.node) as number, index.get(m) as number));
        continue;
      }
      work.pop();
      const parent = work[work.length - 1];
      if (parent) low.set(parent.node, Math.min(low.get(parent.node) as number, low.get(frame.node) as number));
      if (low.get(frame.node) === index.get(frame.node)) {
        const comp: string[] = [];
        let m: string;
        do {
          m = stack.pop() as string;
          onStack.delete(m);
          comp.push(m);
        } while (m !== frame.node);
        out.push(comp);
      }
    }
  }
  return out;
}

export function planText(plan: BuildPlan): string {
  const lines = [`build order (${plan.order.length} feedstocks, ${plan.levels.length} levels):`];
  plan.levels.forEach((l, i) => {
    lines.push(`  level ${i + 1}: ${l.join(' ')}`);
  });
  if (plan.edges.length > 0) lines.push('dependencies:');
  for (const e of plan.edges) lines.push(`  ${e.to} <- ${e.from} (${e.via.join(', ')})`);
  lines.push(plan.cycles.length > 0 ? 'cycles:' : 'cycles: none');
  for (const c of plan.cycles) lines.push(`  ${c.join(' <-> ')}`);
  lines.push(plan.external.length > 0 ? `external (${plan.external.length}):` : 'external: none');
  for (const x of plan.external) lines.push(`  ${x.name} (needed by ${x.needed_by.join(', ')})`);
  if (plan.machine.length > 0) {
    lines.push(`from the build machine: ${plan.machine.map((m) => m.name).join(' ')}`);
  }
  for (const d of plan.duplicates) lines.push(`duplicate: ${d.name} from ${d.feedstocks.join(', ')}`);
  for (const f of plan.failed) {
    const by = f.needed_by.length > 0 ? ` (needed by ${f.needed_by.join(', ')})` : '';
    lines.push(`does not render: ${f.feedstock}${by}: [${f.error.code}] ${f.error.message.split('\n')[0]}`);
  }
  return lines.join('\n');
}

export function planDot(plan: BuildPlan): string {
  const q = (s: string) => JSON.stringify(s);
  const cyclic = new Set(plan.cycles.flat());
  const lines = ['digraph feedstocks {', '  rankdir=LR;'];
  for (const f of plan.feedstocks) lines.push(`  ${q(f.name)}${cyclic.has(f.name) ? ' [color=red]' : ''};`);
  for (const e of plan.edges) lines.push(`  ${q(e.from)} -> ${q(e.to)} [label=${q(e.via.join(','))}];`);
  lines.push('}');
  return lines.join('\n');
}
