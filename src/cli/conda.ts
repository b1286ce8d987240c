import { Command } from 'commander';
import { renderWithCiSupport } from '../conda/ci-support.ts';
import { type BuildPlan, planBuilds, planDot, planText } from '../conda/plan.ts';
import { hostSubdir } from '../conda/platform.ts';
import { loadRecipe, type Recipe } from '../conda/recipe.ts';
import type { OutputRecord } from '../conda/record.ts';
import { renderRecipe } from '../conda/render.ts';
import { renderFeedstocks } from '../conda/render-set.ts';
import type { RenderedRecipe, RenderOptions } from '../conda/render-variants.ts';
import { AccelError } from '../core/errors.ts';
import { condaBuildCommand, condaBuildsCommand } from './conda-build.ts';
import { condaIndexCommand } from './conda-index.ts';
import { condaInstallCommand } from './conda-install.ts';
import type { Globals } from './globals.ts';
import { dataResult } from './result.ts';
import type { Runner } from './runner.ts';

interface PlatformFlags {
  ciSupport?: boolean;
  targetPlatform?: string;
  buildPlatform?: string;
  variantConfig?: string[];
}

function renderOptions(g: Globals, flags: PlatformFlags): RenderOptions {
  const build = flags.buildPlatform ?? hostSubdir();
  return {
    targetPlatform: flags.targetPlatform ?? build,
    buildPlatform: build,
    variantFiles: flags.variantConfig ?? [],
    env: { ...g.env },
  };
}

/** .ci_support files are used whenever a feedstock has them (conda-forge's CI builds exactly those variants). */
function render(recipe: Recipe, options: RenderOptions, flags: PlatformFlags): RenderedRecipe {
  return flags.ciSupport === false ? renderRecipe(recipe, options) : renderWithCiSupport(recipe, options);
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

export function condaCommand(runner: Runner): Command {
  const conda = new Command('conda').description(
    'conda-forge feedstocks for linux-aarch64: render, plan, build, install, index',
  );

  conda
    .command('render')
    .description('render a recipe for every variant: one record per output per variant')
    .argument('<dir>', 'feedstock (with recipe/meta.yaml or recipe/recipe.yaml) or recipe directory')
    .option('--target-platform <subdir>', 'platform to build for, e.g. linux-aarch64 (default: this machine)')
    .option('--build-platform <subdir>', 'platform the build runs on (default: this machine)')
    .option(
      '--variant-config <file>',
      'conda_build_config.yaml over the recipe’s own (repeatable; later files win)',
      collect,
    )
    .option('--ci-support', 'render once per .ci_support/<target>_*.yaml of the feedstock (the default)')
    .option('--no-ci-support', 'ignore .ci_support/: the recipe and its conda_build_config.yaml alone')
    .addHelpText(
      'after',
      `
Examples:
  $ accel conda render examples/feedstocks/libgreet-feedstock --target-platform linux-aarch64
  $ accel conda render zlib-feedstock --target-platform linux-aarch64 --ci-support
  $ accel --json conda render zlib-feedstock --variant-config pinning.yaml`,
    )
    .action(
      runner.action(async (g, dir: string, flags: PlatformFlags) => {
        const rendered = render(loadRecipe(dir), renderOptions(g, flags), flags);
        for (const w of rendered.warnings) g.log.warn(w);
        return dataResult(rendered.records, () => rendered.records.map(recordText).join('\n'));
      }),
    );

  conda
    .command('plan')
    .description('order feedstock builds: dependency graph, build order, parallel levels, cycles, externals')
    .argument('<dirs...>', 'feedstocks, or directories holding feedstocks')
    .option('--target-platform <subdir>', 'platform to build for, e.g. linux-aarch64 (default: this machine)')
    .option('--build-platform <subdir>', 'platform the build runs on (default: this machine)')
    .option(
      '--variant-config <file>',
      'conda_build_config.yaml over each recipe’s own (repeatable; later files win)',
      collect,
    )
    .option('--ci-support', 'render each feedstock once per .ci_support/<target>_*.yaml it has (the default)')
    .option('--no-ci-support', 'ignore .ci_support/: each recipe and its conda_build_config.yaml alone')
    .option('-k, --keep-going', 'plan the feedstocks that render; list the ones that do not (and what needs them)')
    .option('--dot', 'print the graph in Graphviz dot format')
    .addHelpText(
      'after',
      `
Examples:
  $ accel conda plan examples/feedstocks --target-platform linux-aarch64
  $ accel conda plan feedstocks/* --dot | dot -Tsvg > graph.svg`,
    )
    .action(
      runner.action(async (g, dirs: string[], flags: PlatformFlags & { dot?: boolean; keepGoing?: boolean }) => {
        if (flags.dot && g.json) {
          throw new AccelError('ACCEL_USAGE_CONFLICT', '--dot and --json cannot be used together');
        }
        const options = renderOptions(g, flags);
        const { recipes, failed } = renderFeedstocks(dirs, options, {
          ciSupport: flags.ciSupport !== false,
          keepGoing: flags.keepGoing === true,
        });
        const plan: BuildPlan = planBuilds(recipes, failed);
        for (const w of recipes.flatMap((r) => r.warnings)) g.log.warn(w);
        for (const f of failed) g.log.warn(`${f.feedstock}: does not render: ${f.error.message.split('\n')[0]}`);
        if (plan.cycles.length > 0) {
          g.log.warn(
            `${plan.cycles.length} dependency cycle(s): ${plan.cycles.map((c) => c.join(' <-> ')).join('; ')}`,
          );
        }
        return dataResult(plan, () => (flags.dot ? planDot(plan) : planText(plan)), failed.length > 0 ? 1 : undefined);
      }),
    );

  conda.addCommand(condaBuildCommand(runner));
  conda.addCommand(condaBuildsCommand(runner));
  conda.addCommand(condaIndexCommand(runner));
  conda.addCommand(condaInstallCommand(runner));
  return conda;
}

function recordText(r: OutputRecord): string {
  const lines = [`${r.name}-${r.version}-${r.build_string}  (${r.subdir}, feedstock ${r.feedstock})`];
  const variant = Object.entries(r.variant).map(([k, v]) => `${k}=${v}`);
  if (variant.length > 0) lines.push(`  variant: ${variant.join(' ')}`);
  for (const key of ['build', 'host', 'run', 'run_constrained'] as const) {
    if (r.requirements[key].length > 0) lines.push(`  ${key}: ${r.requirements[key].join(', ')}`);
  }
  if (r.run_exports.weak.length > 0) lines.push(`  run_exports: ${r.run_exports.weak.join(', ')}`);
  if (r.run_exports.strong.length > 0) lines.push(`  run_exports (strong): ${r.run_exports.strong.join(', ')}`);
  for (const s of r.sources) {
    lines.push(`  source: ${s.url ?? s.git_url ?? s.path ?? '?'}${s.sha256 ? ` sha256:${s.sha256}` : ''}`);
    if (s.patches.length > 0) lines.push(`    patches: ${s.patches.join(', ')}`);
  }
  if (r.test.requires.length > 0) lines.push(`  test requires: ${r.test.requires.join(', ')}`);
  for (const c of r.test.commands) lines.push(`  test: ${c}`);
  if (r.files.length > 0) lines.push(`  files: ${r.files.join(', ')}`);
  if (r.script) {
    const what = r.script.file ?? `inline, ${r.script.text.split('\n').length} line(s)`;
    lines.push(`  script: ${what}${r.script.shared ? ' (the recipe build, shared by its outputs)' : ''}`);
  }
  return lines.join('\n');
}
