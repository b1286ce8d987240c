import type { Command } from 'commander';
import { type Globals, resolveGlobals } from './globals.ts';
import type { CommandResult } from './result.ts';

/**
 * Adapts handlers to commander: resolves the global flags for the invoked command and keeps the handler's
 * result for `main.ts` to print. Commander passes the parsed arguments, then the options, then the command.
 */
export class Runner {
  result: CommandResult | undefined;

  action<A extends unknown[]>(handler: (globals: Globals, ...args: A) => Promise<CommandResult>) {
    return async (...args: unknown[]): Promise<void> => {
      const cmd = args[args.length - 1] as Command;
      this.result = await handler(resolveGlobals(cmd), ...(args.slice(0, -1) as A));
    };
  }
}
