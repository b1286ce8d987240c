import { recipeError } from '../recipe-error.ts';
import { join } from './evaluate.ts';
import type { YNode } from './tree.ts';

/**
 * The keys of a v1 recipe that accel knows, checked before any rendering so that a typo or a key accel does not
 * do is named with its path and line instead of being ignored. A key is read (`true`), a mapping of its own
 * (`keys`), accepted but not acted on (`warn`: said once per recipe), or refused (`refuse`: an error saying why).
 */
type Rule = true | { keys: Record<string, Rule> } | { warn: string } | { refuse: string };

const ANY = true;

const SCRIPT: Rule = {
  keys: {
    file: ANY,
    content: ANY,
    env: ANY,
    interpreter: ANY,
    secrets: { refuse: 'secrets are not passed to build scripts; export what the script needs in env:' },
    cwd: { refuse: 'scripts run in the work directory' },
  },
};

const SOURCE: Rule = {
  keys: Object.fromEntries(
    [
      'url',
      'sha256',
      'md5',
      'patches',
      'target_directory',
      'file_name',
      'git',
      'rev',
      'tag',
      'branch',
      'depth',
      'lfs',
      'path',
      'use_gitignore',
      'filter',
    ].map((k) => [k, ANY]),
  ),
};

const REQUIREMENTS: Rule = {
  keys: {
    build: ANY,
    host: ANY,
    run: ANY,
    run_constraints: ANY,
    run_exports: {
      keys: {
        weak: ANY,
        strong: ANY,
        noarch: { refuse: 'noarch run_exports are not exported' },
        weak_constraints: { refuse: 'run_exports constraints are not exported' },
        strong_constraints: { refuse: 'run_exports constraints are not exported' },
      },
    },
    ignore_run_exports: { keys: { by_name: ANY, from_package: ANY } },
  },
};

const NOT_CHECKED = 'accel does not check it';

const BUILD: Rule = {
  keys: {
    number: ANY,
    string: ANY,
    skip: ANY,
    noarch: ANY,
    script: SCRIPT,
    files: { keys: { include: ANY, exclude: ANY } },
    dynamic_linking: { warn: `rpaths, overlinking and overdepending: ${NOT_CHECKED}` },
    prefix_detection: { warn: `binary prefix detection settings: ${NOT_CHECKED}; text files are relocated` },
    always_include_files: { refuse: 'files already in the host environment are never packaged' },
    always_copy_files: { refuse: 'files are never linked, always copied' },
    merge_build_and_host_envs: { refuse: 'the build and host environments are always apart (cross builds need it)' },
    variant: {
      keys: {
        use_keys: ANY,
        ignore_keys: ANY,
        down_prioritize_variant: { warn: 'no track_features are added: a solver may prefer this variant' },
      },
    },
    python: {
      keys: {
        entry_points: ANY,
        skip_pyc_compilation: { warn: 'accel never compiles .pyc files into a package' },
        use_python_app_entrypoint: { refuse: 'python.app launchers are macOS only' },
        version_independent: { refuse: 'abi3 (version independent) python packages are not made' },
        site_packages_path: { refuse: 'site-packages is where python puts it' },
      },
    },
    post_process: { refuse: 'post-process regexes are not applied' },
  },
};

const ABOUT: Rule = {
  keys: Object.fromEntries(
    [
      'homepage',
      'license',
      'license_file',
      'license_family',
      'license_url',
      'summary',
      'description',
      'documentation',
      'repository',
      'prelink_message',
    ].map((k) => [k, ANY]),
  ),
};

const TEST: Rule = {
  keys: {
    script: SCRIPT,
    requirements: { keys: { build: ANY, run: ANY } },
    files: { keys: { recipe: ANY, source: ANY } },
    package_contents: {
      keys: {
        files: { keys: { exists: ANY, not_exists: ANY } },
        include: ANY,
        lib: ANY,
        bin: ANY,
        site_packages: ANY,
        strict: { refuse: 'strict package_contents is not checked' },
      },
    },
    python: { keys: { imports: ANY, pip_check: ANY, python_version: { refuse: 'tests run with one python' } } },
    downstream: { refuse: 'downstream tests are not run' },
    perl: { refuse: 'perl tests are not run' },
    r: { refuse: 'R tests are not run' },
    ruby: { refuse: 'ruby tests are not run' },
  },
};

const OUTPUT: Rule = {
  keys: {
    package: { keys: { name: ANY, version: ANY } },
    source: SOURCE,
    build: BUILD,
    requirements: REQUIREMENTS,
    tests: TEST,
    about: ABOUT,
  },
};

const RECIPE: Rule = {
  keys: {
    schema_version: ANY,
    context: ANY,
    package: { keys: { name: ANY, version: ANY } },
    recipe: { keys: { name: ANY, version: ANY } },
    source: SOURCE,
    build: BUILD,
    requirements: REQUIREMENTS,
    tests: TEST,
    about: ABOUT,
    extra: ANY,
    outputs: OUTPUT,
    cache: {
      keys: {
        source: SOURCE,
        requirements: { keys: { build: ANY, host: ANY } },
        build: { keys: { script: SCRIPT } },
      },
    },
  },
};

/** Checks the recipe's keys; returns the warnings for keys accepted but not acted on. */
export function checkKeys(tree: YNode, file: string): string[] {
  const warnings = new Set<string>();
  const check = (node: YNode, rule: Rule, path: string, line: number) => {
    if (rule === true) return;
    if ('refuse' in rule) {
      throw recipeError('UNSUPPORTED', { file, line }, `${path} is not supported: ${rule.refuse}`);
    }
    if ('warn' in rule) {
      warnings.add(`${file}:${line}: ${path} is accepted but ${rule.warn}`);
      return;
    }
    if (node.kind === 'seq') {
      for (const item of node.items) {
        for (const branch of branches(item)) check(branch, rule, path, branch.line);
      }
      return;
    }
    if (node.kind !== 'map') return; // a value where a mapping goes: the reader says so, with its path
    for (const e of node.entries) {
      const sub = rule.keys[e.key];
      const at = join(path, e.key);
      if (sub === undefined) {
        throw recipeError(
          'UNSUPPORTED',
          { file, line: e.line },
          `unknown key ${at}`,
          `known keys${path ? ` under ${path}` : ''}: ${Object.keys(rule.keys).join(', ')}`,
        );
      }
      check(e.value, sub, at, e.line);
    }
  };
  check(tree, RECIPE, '', tree.line);
  return [...warnings];
}

/** A list item, or both branches of an `if:` item (flattened: `then:` may be a list). */
function branches(item: YNode): YNode[] {
  if (item.kind !== 'map' || !item.entries.some((e) => e.key === 'if')) return [item];
  return item.entries
    .filter((e) => e.key === 'then' || e.key === 'else')
    .flatMap((e) => (e.value.kind === 'seq' ? e.value.items.flatMap(branches) : branches(e.value)));
}
