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
