/**
 * Make-syntax dependency files as gcc writes them (`-MD`): `target: dep dep \` continued lines, spaces
 * escaped with backslashes, and with -MP a phony `dep:` rule per header.
 */
export function parseDepFile(text: string): { targets: string[]; deps: string[] } {
  const joined = text.replace(/\\\r?\n/g, ' ');
  const firstRule = joined.split('\n').find((line) => line.includes(':')) ?? '';
  const colon = findRuleColon(firstRule);
  if (colon < 0) return { targets: [], deps: [] };
  return { targets: splitWords(firstRule.slice(0, colon)), deps: splitWords(firstRule.slice(colon + 1)) };
}

/** The rule's colon: the first one not escaped with a backslash. */
function findRuleColon(line: string): number {
  for (let i = 0; i < line.length; i++) {
    if (line[i] === '\\') i++;
    else if (line[i] === ':') return i;
  }
  return -1;
}

function splitWords(text: string): string[] {
  const words: string[] = [];
  let word = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (c === '\\' && (text[i + 1] === ' ' || text[i + 1] === '#')) {
      word += text[++i];
    } else if (c === '$' && text[i + 1] === '$') {
      word += '$';
      i++;
    } else if (c === ' ' || c === '\t') {
      if (word) words.push(word);
      word = '';
    } else word += c;
  }
  if (word) words.push(word);
  return words;
}

/**
 * The dependency file for another output: a cached result made for `build/a/x.o` restored for `build/b/x.o`
 * must name the new target, exactly where gcc would have.
 */
export function retargetDepFile(text: string, from: string, to: string): string {
  if (from === to) return text;
  const escaped = (s: string) => s.replace(/ /g, '\\ ');
  const f = escaped(from);
  return text.startsWith(`${f}:`) ? `${escaped(to)}${text.slice(f.length)}` : text;
}

/**
 * The dependency file with every path word passed through `map` (undefined: kept as it is); the first rule's
 * targets and all separators are untouched. Words are unescaped before `map` sees them and escaped again as
 * gcc escapes them (`\ `, `\#`, `$$`), except a leading `$CWD` (base-dirs.ts), which stays a single `$`: no
 * word gcc writes starts with one. Undefined when a word `map` changes would not read back exactly.
 */
export function mapDepFilePaths(text: string, map: (path: string) => string | undefined): string | undefined {
  let out = '';
  let inTargets = true;
  for (const m of text.matchAll(/((?:\\[ #]|\\(?!\r?\n)|[^\s\\])+)|(\\\r?\n|\s+)/g)) {
    const [whole, word] = m;
    if (word === undefined) {
      out += whole;
      continue;
    }
    if (inTargets) {
      out += word;
      if (word.endsWith(':')) inTargets = false;
      continue;
    }
    const colon = word.endsWith(':') ? ':' : '';
    const raw = colon ? word.slice(0, -1) : word;
    const path = raw === '' ? undefined : unescapeWord(raw);
    const mapped = path === undefined ? undefined : map(path);
    if (path === undefined || mapped === undefined) {
      out += word;
      continue;
    }
    if (escapeWord(path) !== raw) return undefined;
    out += escapeWord(mapped) + colon;
  }
  return out;
}

const MARK = '$CWD';

function unescapeWord(raw: string): string {
  const mark = raw.startsWith(MARK) ? MARK : '';
  return mark + raw.slice(mark.length).replace(/\\([ #])|\$\$/g, (_m, c: string | undefined) => c ?? '$');
}

function escapeWord(path: string): string {
  const mark = path.startsWith(MARK) ? MARK : '';
  return mark + path.slice(mark.length).replace(/[ #]/g, '\\$&').replace(/\$/g, '$$$$');
}
