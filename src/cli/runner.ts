import type { Command } from 'commander';
import { type Globals, resolveGlobals } from './globals.ts';
import type { CommandResult } from './result.ts';

/**
 * Adapts handlers to commander: resolves the global flags for the invoked command and keeps the handler's
 * result for `main.ts` to print. Commander passes the parsed arguments, then the options, then the command.
 */
export class Runner {
  result: CommandResult | undefined;
  /** `--json`, wherever it was typed. */
  json = false;

  action<A extends unknown[]>(handler: (globals: Globals, ...args: A) => Promise<CommandResult>) {
    return async (...args: unknown[]): Promise<void> => {
      const cmd = args[args.length - 1] as Command;
      const globals = resolveGlobals(cmd);
      this.json = globals.json;
      this.result = await handler(globals, ...(args.slice(0, -1) as A));
    };
  }
}
