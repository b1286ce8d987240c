import type { Dict } from './jinja-values.ts';
import { isDict } from './jinja-values.ts';
import { recipeError, type SourcePos } from './recipe-error.ts';

/** One package a recipe builds for one variant: what `accel conda render` prints and the builder consumes. */
export interface OutputRecord {
  feedstock: string;
  /** The directory of meta.yaml, where build scripts and patches are. */
  recipe_dir: string;
  name: string;
  version: string;
  build_number: number;
  build_string: string;
  subdir: string;
  noarch: string | null;
  /** The variant values this recipe uses (those that went into the hash). */
  variant: Record<string, string>;
  requirements: { build: string[]; host: string[]; run: string[]; run_constrained: string[] };
  run_exports: { weak: string[]; strong: string[] };
  /** Host packages whose run_exports this output does not take: by the exported name, or all of a package's. */
  ignore_run_exports: { by_name: string[]; from_package: string[] };
  test: { commands: string[]; requires: string[]; imports: string[]; files: string[]; source_files: string[] };
  sources: Source[];
  about: { home: string | null; license: string | null; summary: string | null };
  /**
   * In a split recipe (`outputs:`), the recipe's own package name and requirements: the environment of the
   * shared top-level build whose files the outputs pick up. Null for a recipe without outputs.
   */
  top_level: {
    name: string;
    requirements: { build: string[]; host: string[] };
    /** The recipe's own build script (build.sh or build/script), run once before the outputs' own scripts. */
    script: { file: string | null; text: string } | null;
  } | null;
  /** Python entry points (`name = module:function`), written into bin/ after the build script. */
  entry_points: string[];
  /** Files an output takes from the recipe's top-level build (`files:` globs), when it has no script of its own. */
  files: string[];
  /** Globs an output's `files: {include, exclude}` takes back out. */
  files_exclude: string[];
  /**
   * The build script: a file of the recipe or the inline `script:`. `shared` marks the recipe's top-level
   * build, which runs once for all outputs that pick their `files:` from it. Null when nothing is built.
   */
  script: { file: string | null; text: string; shared: boolean } | null;
}

export interface Source {
  url: string | null;
  sha256: string | null;
  /** Older recipes pin their source by md5 or sha1 only. */
  md5: string | null;
  sha1: string | null;
  patches: string[];
  folder: string | null;
  git_url: string | null;
  git_rev: string | null;
  path: string | null;
  /** Keep the download under this name in the work directory instead of unpacking it (a v1 `file_name`). */
  file_name: string | null;
}

/** A recipe's source, to point errors about a field at the line that sets it. */
export interface RecipeText {
  file: string;
  text: string;
}

/** The line of the first `key:` that sets the last part of `what` (`build/number` → `number:`), else 1. */
export function where(src: RecipeText, what: string): SourcePos {
  const key = what.split('/').pop() as string;
  const i = src.text.split('\n').findIndex((l) => new RegExp(`^\\s*(- )?${key}\\s*:`).test(l));
  return { file: src.file, line: i < 0 ? 1 : i + 1 };
}

/** The first token of a match spec: `zlib >=1.2` and `zlib>=1.2` both name `zlib`. */
export function specName(spec: string): string {
  return spec.trim().split(/[\s<>=!~,[]/)[0] ?? spec;
}

export function asDict(v: unknown, file: RecipeText, what: string): Dict {
  if (v === undefined || v === null || v === '') return {};
  if (!isDict(v)) throw recipeError('RECIPE', where(file, what), `'${what}' must be a mapping`);
  return v;
}

/** A YAML list of strings (selectors may have emptied some items, and a list may be emptied to null). */
export function asList(v: unknown, file: RecipeText, what: string): string[] {
  if (v === undefined || v === null || v === '') return [];
  const list = Array.isArray(v) ? v : [v];
  return list
    .filter((x) => x !== null && x !== '')
    .map((x) => {
      if (typeof x !== 'string') throw recipeError('RECIPE', where(file, what), `'${what}' must be a list of strings`);
      return x.trim();
    });
}

export function asBool(v: unknown): boolean {
  return typeof v === 'string' ? ['true', 'True', 'yes', 'on', '1'].includes(v.trim()) : v === true;
}

export function asInt(v: unknown, file: RecipeText, what: string): number {
  if (v === undefined || v === null || v === '') return 0;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) {
    throw recipeError('RECIPE', where(file, what), `'${what}' must be a non-negative integer, not '${String(v)}'`);
  }
  return n;
}

export function readSources(v: unknown, file: RecipeText): Source[] {
  if (v === undefined || v === null) return [];
  const list = Array.isArray(v) ? v : [v];
  return list.map((s) => {
    const d = asDict(s, file, 'source');
    const urls = asList(d.url, file, 'source/url');
    const str = (x: unknown) => (typeof x === 'string' && x !== '' ? x : null);
    return {
      url: urls[0] ?? null,
      sha256: str(d.sha256),
      md5: str(d.md5),
      sha1: str(d.sha1),
      patches: asList(d.patches, file, 'source/patches'),
      folder: str(d.folder),
      git_url: str(d.git_url),
      git_rev: str(d.git_rev),
      path: str(d.path),
      file_name: null,
    };
  });
}

export function readRunExports(v: unknown, file: RecipeText): { weak: string[]; strong: string[] } {
  if (v === undefined || v === null || v === '') return { weak: [], strong: [] };
  if (Array.isArray(v)) return { weak: asList(v, file, 'run_exports'), strong: [] };
  const d = asDict(v, file, 'run_exports');
  return { weak: asList(d.weak, file, 'run_exports/weak'), strong: asList(d.strong, file, 'run_exports/strong') };
}

export function readTest(v: unknown, file: RecipeText): OutputRecord['test'] {
  const d = asDict(v, file, 'test');
  return {
    commands: asList(d.commands, file, 'test/commands'),
    requires: asList(d.requires, file, 'test/requires'),
    imports: asList(d.imports, file, 'test/imports'),
    files: asList(d.files, file, 'test/files'),
    source_files: asList(d.source_files, file, 'test/source_files'),
  };
}

export function readAbout(v: unknown, file: RecipeText): OutputRecord['about'] {
  const d = asDict(v, file, 'about');
  const str = (x: unknown) => (typeof x === 'string' && x.trim() !== '' ? x.trim() : null);
  return { home: str(d.home), license: str(d.license), summary: str(d.summary) };
}
