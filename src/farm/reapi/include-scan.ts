import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { parseArgs } from '../../compiler/options.ts';
import { searchDirsOnce } from '../../compiler/search-dirs.ts';

/**
 * The files a compile may read, found without running the preprocessor: every `#include` (and `include_next`,
 * `import`, `__has_include`) of every file reached, resolved against every directory it could come from, with
 * conditionals ignored. That is a superset of what the preprocessor reads, which is what an REAPI input tree
 * needs (an extra header costs an upload once; a missing one would fail the compile). Each file's directives
 * are parsed once per process (the compile-cache daemon's) while its size and mtime stay the same, so a cold
 * build pays a few file reads per new header instead of a preprocessor run per compile (`gcc -M`: 26 ms per
 * lua TU).
 *
 * Undefined whenever the answer could be short: a computed include (`#include MACRO`), digraphs or trigraphs
 * near a directive, options that change the search path in ways not modelled here (sysroots, -nostdinc,
 * prefixes, options passed straight to the preprocessor), an assembler source. The caller then asks the
 * compiler (`-M`).
 */
export interface ScanRequest {
  compilerPath: string;
  args: string[];
  cwd: string;
  source: string;
  language: string;
  env: NodeJS.ProcessEnv;
}

/** Options after which this scanner cannot know the search path; `-M` answers instead. */
const UNMODELLED =
  /^(--sysroot|-isysroot|-nostdinc|-nostdinc\+\+|-iprefix|-iwithprefix|-iwithprefixbefore|-imultilib|-imultiarch|-isystem-after|--no-standard-includes|-undef|-I-|-Wp,|-Xpreprocessor|-B|-specs|-fmodules|-fmodule-map-file|-fplugin|-trigraphs|--include-directory-after|-cxx-isystem|-stdlib)/;
const TARGET = /^-m(32|64|x32|abi=.*)$/;

export function scanIncludes(req: ScanRequest): string[] | undefined {
  if (!/^(c|c\+\+|objective-c|objective-c\+\+|c-header|c\+\+-header)$/.test(req.language)) return undefined;
  const quote: string[] = [];
  const bracket: string[] = [];
  const after: string[] = [];
  const forced: string[] = [];
  const target: string[] = [];
  let trigraphs = false;
  const cmdline = new Set<string>();
  for (const arg of parseArgs(req.args)) {
    if (UNMODELLED.test(arg.option) || UNMODELLED.test(arg.raw[0] ?? '')) return undefined;
    // ISO modes (-std=c99, -ansi, …) turn trigraphs on: `??=include` is then a directive.
    if (/^(-std=(c|iso)|-ansi$)/.test(arg.raw[0] ?? '')) trigraphs = true;
    if (TARGET.test(arg.raw[0] ?? '')) target.push(arg.raw[0] as string);
    if (arg.option === '-D') {
      cmdline.add(/^[A-Za-z_]\w*/.exec(arg.value ?? '')?.[0] ?? '');
      continue;
    }
    const value = arg.value === undefined ? undefined : resolve(req.cwd, arg.value);
    if (!value) continue;
    if (arg.option === '-iquote') quote.push(value);
    else if (arg.option === '-I' || arg.option === '-isystem') bracket.push(value);
    else if (arg.option === '-idirafter') after.push(value);
    else if (arg.option === '-include' || arg.option === '-imacros') forced.push(arg.value as string);
  }
  // The compiler's own directories for this language and target; a relative entry would be relative to the
  // probe's working directory, not the compile's, and is left out.
  const probed = searchDirsOnce(req.compilerPath, { language: req.language, options: target, env: req.env });
  if (!probed) return undefined;
  const system = [...probed.quote, ...probed.bracket].filter((d) => d.startsWith('/'));
  const envDirs = ['CPATH', req.language.startsWith('c++') ? 'CPLUS_INCLUDE_PATH' : 'C_INCLUDE_PATH']
    .flatMap((k) => (req.env[k] ?? '').split(':'))
    .filter(Boolean)
    .map((d) => resolve(req.cwd, d));
  // Every directory any include may be found in, in no particular order: all candidates are taken.
  const dirs = [...new Set([...quote, ...bracket, ...envDirs, ...system, ...after])];
  const found = new Set<string>();
  const queue: string[] = [];
  const seen = new Map<string, Set<string> | null>();
  const inDirs = new Map<string, string[]>();
  const add = (path: string) => {
    if (found.has(path) || !isFile(path, seen)) return;
    found.add(path);
    queue.push(path);
  };
  add(resolve(req.cwd, req.source));
  for (const f of forced) {
    add(resolve(req.cwd, f));
    for (const d of dirs) add(join(d, f));
  }
  const computed = new Set<string>();
  const defined = new Set<string>();
  while (queue.length > 0) {
    const file = queue.shift() as string;
    const directives = directivesOf(file);
    if (!directives.names || (trigraphs && directives.trigraphs)) return undefined;
    for (const m of directives.computed) computed.add(m);
    for (const d of directives.defines) defined.add(d);
    for (const name of directives.names) {
      if (isAbsolute(name)) {
        add(name);
        continue;
      }
      add(join(dirname(file), name));
      // The search directories' candidates depend on the name only: looked up once per name and scan.
      let candidates = inDirs.get(name);
      if (!candidates) {
        candidates = dirs.map((d) => join(d, name)).filter((p) => isFile(p, seen));
        inDirs.set(name, candidates);
      }
      for (const c of candidates) add(c);
    }
  }
  // `#include MACRO` with MACRO undefined is an error, so in a compile that works such a directive sits in a
  // branch not taken — unless MACRO is defined somewhere: on the command line, in any file that may be read
  // (all of them scanned), or by the compiler itself (`__`-names). Then only the preprocessor knows.
  for (const m of computed) if (m.startsWith('__') || defined.has(m) || cmdline.has(m)) return undefined;
  return [...found];
}

/** Include names of one file (undefined: a directive this scanner cannot resolve), kept per size and mtime. */
const parsed = new Map<string, Directives>();

interface Directives {
  key: string;
  /** Literal include names; undefined when a directive could not be read at all. */
  names: string[] | undefined;
  /** Macros an `#include MACRO` names. */
  computed: string[];
  /** Macros the file #defines. */
  defines: string[];
  trigraphs: boolean;
}
/** A directive, as far as a line tells; the name must be followed by space, `<` or `"` (not prose: `#include's`). */
const DIRECTIVE = /^[ \t]*(?:#|%:)[ \t]*(include|include_next|import|embed)(?=[ \t<"])[ \t]*(.*)$/gm;
const HAS_INCLUDE = /__has_include(?:_next)?\s*\(\s*([<"])([^>"\n]+)[>"]\s*\)/g;

function directivesOf(file: string): Directives {
  const none = { key: '', names: [], computed: [], defines: [], trigraphs: false };
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(file);
  } catch {
    return none;
  }
  const key = `${st.size} ${st.mtimeMs} ${st.ino}`;
  const known = parsed.get(file);
  if (known?.key === key) return known;
  let text: string;
  try {
    // Backslash-newlines joined first: a directive may be split across lines.
    text = readFileSync(file, 'latin1').replace(/\\\r?\n/g, '');
  } catch {
    return none;
  }
  let names: string[] | undefined = [];
  const computed: string[] = [];
  for (const m of text.matchAll(DIRECTIVE)) {
    const rest = (m[2] ?? '').trim();
    const literal = /^(?:"([^"]+)"|<([^>]+)>)/.exec(rest);
    if (literal) {
      names.push((literal[1] ?? literal[2]) as string);
      continue;
    }
    // `#include MACRO` or `#include MACRO(args)`: resolved by the caller if it can show MACRO is never defined.
    const macro = /^([A-Za-z_]\w*)\s*(?:\([^)]*\))?\s*(?:\/[/*].*)?$/.exec(rest);
    if (!macro) {
      names = undefined;
      break;
    }
    computed.push(macro[1] as string);
  }
  if (names) for (const m of text.matchAll(HAS_INCLUDE)) names.push(m[2] as string);
  const defines = [...text.matchAll(/^[ \t]*(?:#|%:)[ \t]*define[ \t]+([A-Za-z_]\w*)/gm)].map((m) => m[1] as string);
  // `??=` is `#` when trigraphs are on (ISO modes): such a file is left to the preprocessor then.
  const entry = { key, names, computed, defines, trigraphs: text.includes('??=') };
  if (parsed.size > 200_000) parsed.clear();
  parsed.set(file, entry);
  return entry;
}

/**
 * The regular files of a directory, kept while the directory's mtime stays the same (a file created, removed
 * or renamed in it changes that): an include name is looked up in every search directory, and most lookups
 * miss, so a miss must be as cheap as a hit and must not outlive the directory's contents.
 */
const listings = new Map<string, { mtimeMs: number; files: Set<string> }>();

/** Whether `path` is a regular file; `seen` holds the listings checked during this scan. */
function isFile(path: string, seen: Map<string, Set<string> | null>): boolean {
  const dir = dirname(path);
  let files = seen.get(dir);
  if (files === undefined) {
    files = listing(dir);
    seen.set(dir, files);
  }
  return files?.has(basename(path)) ?? false;
}

function listing(dir: string): Set<string> | null {
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(dir);
  } catch {
    return null;
  }
  if (!st.isDirectory()) return null;
  const known = listings.get(dir);
  if (known?.mtimeMs === st.mtimeMs) return known.files;
  const files = new Set<string>();
  try {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isFile()) files.add(e.name);
      else if (e.isSymbolicLink()) {
        try {
          if (statSync(join(dir, e.name)).isFile()) files.add(e.name);
        } catch {
          // a dangling link is no header
        }
      }
    }
  } catch {
    return null;
  }
  if (listings.size > 50_000) listings.clear();
  listings.set(dir, { mtimeMs: st.mtimeMs, files });
  return files;
}
