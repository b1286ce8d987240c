// Rewrites the settings tables in docs/*.md from the config schema (src/core/settings.ts):
// every block between `<!-- settings [SECTION] -->` and `<!-- end settings -->`.
// Usage: node build/settings-docs.ts [--check]   (--check: exit 1 when a table is out of date)
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { settingsTable } from '../src/core/settings.ts';

const BLOCK = /(<!-- settings ?([a-z]*) -->\n)[\s\S]*?(<!-- end settings -->)/g;

export function renderSettingsBlocks(text: string): string {
  return text.replace(BLOCK, (_all, open: string, section: string, close: string) => {
    return `${open}${settingsTable(section || undefined)}\n${close}`;
  });
}

if (import.meta.main) {
  const docs = join(import.meta.dirname, '..', 'docs');
  const check = process.argv.includes('--check');
  let stale = 0;
  for (const name of readdirSync(docs).filter((f) => f.endsWith('.md'))) {
    const file = join(docs, name);
    const text = readFileSync(file, 'utf8');
    const next = renderSettingsBlocks(text);
    if (next === text) continue;
    stale++;
    if (check) console.error(`${file}: settings table out of date (npm run docs:settings)`);
    else {
      writeFileSync(file, next);
      console.log(`updated ${file}`);
    }
  }
  process.exitCode = check && stale > 0 ? 1 : 0;
}
