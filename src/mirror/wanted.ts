import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { AccelError, fsError, isAccelError } from '../core/errors.ts';
import { type Digest, parseDigest } from '../store/digest.ts';

/** One file a build wants: the URLs it may be fetched from (any of them serves the same content). */
export interface WantedFile {
  urls: string[];
  /** When known, the content is pinned: any URL of this entry must serve exactly these bytes. */
  sha256?: Digest;
  /** Where it was declared, as `path:line`. */
  source: string;
}

/** Reads a list of wanted files, choosing the parser by file name: Bazel files are Starlark, the rest URL lists. */
export function readWantedFiles(path: string): WantedFile[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw fsError(err, 'reading', path);
  }
  return isBazelFile(path) ? parseBazelFile(text, path) : parseUrlList(text, path);
}

function isBazelFile(path: string): boolean {
  const name = basename(path);
  return name === 'WORKSPACE' || name.endsWith('.bzl') || name.endsWith('.bazel');
}

/** Parses `url [sha256]` lines; `#` starts a comment at the beginning of a field, so URL fragments survive. */
export function parseUrlList(text: string, source: string): WantedFile[] {
  const wanted: WantedFile[] = [];
  text.split(/\r?\n/).forEach((line, index) => {
    const where = `${source}:${index + 1}`;
    const fields = line.trim().split(/\s+/);
    const comment = fields.findIndex((f) => f.startsWith('#'));
    if (comment !== -1) fields.length = comment;
    const [url, digest, ...extra] = fields.filter((f) => f !== '');
    if (url === undefined) return;
    if (!isHttpUrl(url)) throw badList(where, `not an http or https URL: '${url}'`);
    if (extra.length > 0) throw badList(where, `unexpected field '${extra[0]}' after the checksum`);
    if (digest === undefined) {
      wanted.push({ urls: [url], source: where });
      return;
    }
    try {
      wanted.push({ urls: [url], sha256: parseDigest(digest), source: where });
    } catch (err) {
      if (!isAccelError(err)) throw err;
      throw badList(where, `not a sha256 checksum: '${digest}'`);
    }
  });
  return wanted;
}

function badList(where: string, what: string): AccelError {
  return new AccelError('ACCEL_MIRROR_BAD_LIST', `${where}: ${what}`, {
    hint: 'each line is `<http(s) URL> [sha256]`; blank lines and lines starting with # are ignored',
    exitCode: 2,
  });
}

function isHttpUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '';
  } catch {
    return false;
  }
}

interface Token {
  kind: 'word' | 'string' | 'op';
  value: string;
  line: number;
}

/** An open parenthesis: a call owns the URLs inside it; a plain group only balances parentheses. */
interface Frame {
  call: boolean;
  line: number;
  urls: string[];
  sha256?: Digest;
}

/** Arguments whose URL is not a file to download (a git remote is cloned, not fetched). */
const NOT_DOWNLOADS = new Set(['remote']);

/** Words that can precede `(` without making it a call. */
const KEYWORDS = new Set(['and', 'elif', 'for', 'if', 'in', 'lambda', 'not', 'or', 'return', 'while']);

/**
 * Finds downloads in Starlark (WORKSPACE, MODULE.bazel, .bzl) without a full parser: every call whose
 * arguments include `sha256 = "<hex>"` or `integrity = "sha256-<base64>"` is one archive, and every complete
 * http(s) string literal inside it (however deeply nested: `urls = tf_mirror_urls("...")`) is one of its URLs.
 * URLs belong to the innermost call with a checksum, else to the outermost call, which is returned unpinned.
 */
export function parseBazelFile(text: string, source: string): WantedFile[] {
  const tokens = tokenize(text);
  const found: { line: number; order: number; file: WantedFile }[] = [];
  const stack: Frame[] = [];
  const innermostCall = (): Frame | undefined => stack.findLast((f) => f.call);

  const close = (frame: Frame): void => {
    if (!frame.call) return;
    const parent = innermostCall();
    if (frame.sha256 === undefined && parent) {
      parent.urls.push(...frame.urls);
      return;
    }
    const urls = [...new Set(frame.urls)];
    if (urls.length === 0) return;
    const file: WantedFile = { urls, source: `${source}:${frame.line}` };
    if (frame.sha256 !== undefined) file.sha256 = frame.sha256;
    found.push({ line: frame.line, order: found.length, file });
  };

  tokens.forEach((token, i) => {
    const prev = tokens[i - 1];
    if (token.kind === 'op' && token.value === '(') {
      const call = prev?.kind === 'word' && isCallName(prev.value) && !isDefinition(tokens[i - 2]);
      stack.push({ call, line: prev?.line ?? token.line, urls: [] });
    } else if (token.kind === 'op' && token.value === ')') {
      const frame = stack.pop();
      if (frame) close(frame);
    } else if (token.kind === 'string') {
      const frame = innermostCall();
      if (!frame) return;
      const key = prev?.kind === 'op' && prev.value === '=' ? tokens[i - 2] : undefined;
      const checksum = key?.kind === 'word' ? checksumArgument(key.value, token.value) : undefined;
      if (checksum !== undefined) frame.sha256 ??= checksum;
      else if (key?.kind === 'word' && NOT_DOWNLOADS.has(key.value)) return;
      else if (isCompleteLiteral(prev, tokens[i + 1]) && isHttpUrl(token.value)) frame.urls.push(token.value);
    }
  });
  // An unbalanced file still yields what its open calls hold.
  for (let frame = stack.pop(); frame; frame = stack.pop()) close(frame);
  return found.sort((a, b) => a.line - b.line || a.order - b.order).map((f) => f.file);
}

function isCallName(word: string): boolean {
  return /^[A-Za-z_]/.test(word) && !KEYWORDS.has(word);
}

/** `def name(` opens a parameter list, whose default values are not downloads. */
function isDefinition(before: Token | undefined): boolean {
  return before?.kind === 'word' && before.value === 'def';
}

/** A literal that is part of an expression (`"https://x/" + v`, `"...{}".format(v)`) is not a whole URL. */
function isCompleteLiteral(prev: Token | undefined, next: Token | undefined): boolean {
  if (prev?.kind === 'op' && prev.value === '+') return false;
  return !(next?.kind === 'op' && (next.value === '+' || next.value === '%' || next.value === '.'));
}

function checksumArgument(key: string, value: string): Digest | undefined {
  if (key === 'sha256' && /^[0-9a-fA-F]{64}$/.test(value)) return parseDigest(value);
  if (key === 'integrity') return sriToDigest(value);
  return undefined;
}

/** `sha256-<base64>` (Subresource Integrity) as hex; other algorithms or malformed values are no checksum. */
export function sriToDigest(sri: string): Digest | undefined {
  const m = /^sha256-([A-Za-z0-9+/]{43}=)$/.exec(sri.trim());
  if (!m?.[1]) return undefined;
  const bytes = Buffer.from(m[1], 'base64');
  return bytes.length === 32 ? parseDigest(bytes.toString('hex')) : undefined;
}

/**
 * Words, string literals and operators; comments are dropped. A literal's value keeps only the character after
 * each backslash: exact for escaped quotes and backslashes, the only escapes a URL literal needs.
 */
function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let line = 1;
  let i = 0;
  while (i < text.length) {
    const c = text[i] as string;
    if (c === '\n') {
      line++;
      i++;
    } else if (c === '#') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (c === '"' || c === "'") {
      const start = line;
      const { value, end, newlines } = readString(text, i, false);
      tokens.push({ kind: 'string', value, line: start });
      line += newlines;
      i = end;
    } else if (/[A-Za-z0-9_]/.test(c)) {
      let end = i;
      while (end < text.length && /[A-Za-z0-9_]/.test(text[end] as string)) end++;
      const word = text.slice(i, end);
      const quote = text[end];
      if ((quote === '"' || quote === "'") && /^(?:[rRbB]|[rR][bB]|[bB][rR])$/.test(word)) {
        const start = line;
        const { value, end: after, newlines } = readString(text, end, /r/i.test(word));
        tokens.push({ kind: 'string', value, line: start });
        line += newlines;
        i = after;
      } else {
        tokens.push({ kind: 'word', value: word, line });
        i = end;
      }
    } else if (/\s/.test(c)) {
      i++;
    } else {
      // `==` is one operator, so `sha256 == "..."` is never mistaken for an argument.
      const two = text.slice(i, i + 2);
      const op = /^[=!<>+\-*/%|&^]=$/.test(two) ? two : c;
      tokens.push({ kind: 'op', value: op, line });
      i += op.length;
    }
  }
  return tokens;
}

/**
 * Reads the literal whose opening quote is at `start`. A backslash always hides the next character from the
 * scan (so `"\")"` ends where Starlark says), even in raw strings; a one-line string also ends at a newline.
 */
function readString(text: string, start: number, raw: boolean): { value: string; end: number; newlines: number } {
  const quote = text[start] as string;
  const triple = text.startsWith(quote.repeat(3), start);
  const delimiter = triple ? quote.repeat(3) : quote;
  let i = start + delimiter.length;
  let value = '';
  let newlines = 0;
  while (i < text.length && !text.startsWith(delimiter, i)) {
    const c = text[i] as string;
    if (c === '\n') {
      if (!triple) break;
      newlines++;
    }
    if (c === '\\' && i + 1 < text.length) {
      const next = text[i + 1] as string;
      if (next === '\n') newlines++;
      value += raw ? c + next : next;
      i += 2;
      continue;
    }
    value += c;
    i++;
  }
  const end = text.startsWith(delimiter, i) ? i + delimiter.length : i;
  return { value, end, newlines };
}
