import { expandResponseFiles } from './options.ts';

/**
 * How cl.exe (and clang-cl) split a command line read from text — an `@file`, or the `CL` and `_CL_`
 * environment variables — into arguments: the Microsoft C runtime's rules, not a shell's. Whitespace
 * separates arguments outside double quotes; 2n backslashes before a quote are n backslashes and the quote
 * toggles quoting, 2n+1 are n backslashes and a literal quote; backslashes anywhere else are literal (so
 * `C:\dir\` stays as written); `""` inside quotes is a literal quote. Single quotes mean nothing.
 */
export function splitWindowsCommandLine(text: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (c === '\\') {
      let n = 0;
      while (text[i + n] === '\\') n++;
      if (text[i + n] === '"') {
        word += '\\'.repeat(Math.floor(n / 2));
        if (n % 2 === 1) {
          word += '"';
          i += n;
        } else i += n - 1;
      } else {
        word += '\\'.repeat(n);
        i += n - 1;
      }
      inWord = true;
    } else if (c === '"') {
      if (quoted && text[i + 1] === '"') {
        word += '"';
        i++;
      } else quoted = !quoted;
      inWord = true;
    } else if (!quoted && (c === ' ' || c === '\t' || c === '\r' || c === '\n')) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (inWord) words.push(word);
  return words;
}

/** A response file's text: UTF-16 with its byte-order mark (as Visual Studio writes them), else UTF-8. */
function responseText(bytes: Buffer): string {
  if (bytes[0] === 0xff && bytes[1] === 0xfe) return bytes.subarray(2).toString('utf16le');
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) return bytes.subarray(3).toString('utf8');
  return bytes.toString('utf8');
}

/** `@file` arguments replaced by the arguments in the file, read as cl reads it (UTF-16 or UTF-8, Windows rules). */
export function expandMsvcResponseFiles(args: readonly string[], cwd: string): string[] {
  return expandResponseFiles(args, cwd, (file) => splitWindowsCommandLine(responseText(file)));
}
