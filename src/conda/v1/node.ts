import { recipeError } from '../recipe-error.ts';
import { join as joinPath } from './evaluate.ts';
import type { YNode } from './tree.ts';

/** A node of the evaluated tree with its path, read as the types recipe keys have. */
export class Node {
  readonly raw: YNode;
  readonly file: string;
  readonly path: string;
  constructor(raw: YNode, file: string, path: string) {
    this.raw = raw;
    this.file = file;
    this.path = path;
  }
  pos(): { file: string; line: number } {
    return { file: this.file, line: this.raw.line };
  }
  get(key: string): Node | undefined {
    if (this.raw.kind !== 'map') return undefined;
    const e = this.raw.entries.find((x) => x.key === key);
    // A key with no value (`run_exports:` emptied by its conditions) is as good as absent.
    if (!e || (e.value.kind === 'scalar' && e.value.value === '' && e.value.plain)) return undefined;
    return new Node(e.value, this.file, joinPath(this.path, key));
  }
  require(key: string): Node {
    const n = this.get(key);
    if (!n) throw recipeError('RECIPE', this.pos(), `${joinPath(this.path, key)} is missing`);
    return n;
  }
  scalar(): Extract<YNode, { kind: 'scalar' }> {
    if (this.raw.kind !== 'scalar')
      throw recipeError('RECIPE', this.pos(), `${this.path || 'the recipe'} must be a value`);
    return this.raw;
  }
  str(): string {
    return this.scalar().value.trim();
  }
  int(): number {
    const s = this.str();
    if (!/^\d+$/.test(s))
      throw recipeError('RECIPE', this.pos(), `${this.path} must be a non-negative integer, not '${s}'`);
    return Number(s);
  }
  items(): Node[] {
    if (this.raw.kind !== 'seq') throw recipeError('RECIPE', this.pos(), `${this.path} must be a list`);
    return this.raw.items.map((i) => new Node(i, this.file, this.path));
  }
  /** A list of strings (a single value counts as a list of one); empty items (a condition's leftovers) dropped. */
  strings(): string[] {
    if (this.raw.kind === 'scalar') return this.raw.value.trim() === '' ? [] : [this.raw.value.trim()];
    return this.items()
      .map((n) => n.str())
      .filter((s) => s !== '');
  }
}
