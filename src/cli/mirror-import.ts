import { Command } from 'commander';
import { importDirectory } from '../mirror/import.ts';
import { readWantedFiles } from '../mirror/wanted.ts';
import { withStore } from './globals.ts';
import { collect } from './parse.ts';
import { dataResult } from './result.ts';
import type { Runner } from './runner.ts';

/** `accel mirror import`: stores files already on disk, and the URLs they were fetched from when known. */
export function mirrorImportCommand(runner: Runner): Command {
  return new Command('import')
    .description('import files already on disk: a Bazel repository cache, a distdir, or a folder of files')
    .argument('<dir>', 'repository cache (content_addressable/sha256/<hex>/file), distdir or folder')
    .option(
      '--urls <file>',
      'a URL list or Bazel file naming what the files are (url [sha256] per line); repeatable',
      collect,
    )
    .action(
      runner.action(async (g, dir: string, flags: { urls?: string[] }) => {
        const wanted = (flags.urls ?? []).flatMap((f) => readWantedFiles(f));
        const result = await withStore(g, (store) => importDirectory(store, dir, { wanted }));
        const mapped = result.imported.filter((i) => i.urls.length > 0).length;
        const lines = [
          ...result.failed.map((f) => `failed  ${f.file}: ${f.reason}`),
          `imported ${result.imported.length} files (${mapped} with URLs), ${result.failed.length} failed`,
        ];
        return dataResult(result, () => lines.join('\n'), result.failed.length > 0 ? 1 : 0);
      }),
    );
}
