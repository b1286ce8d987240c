import { resolve } from 'node:path';
import { Command } from 'commander';
import { AccelError } from '../core/errors.ts';
import type { ReapiRun } from '../farm/reapi/command.ts';
import { createSyncer } from '../farm/syncer.ts';
import { parseBind, parsePort } from '../net/address.ts';
import { loadIdentity } from '../net/tls-identity.ts';
import { withServingStore } from './globals.ts';
import { dataResult } from './result.ts';
import type { Runner } from './runner.ts';
import { runService } from './service.ts';

interface SyncerFlags {
  port?: string;
  bind?: string;
  dir: string[];
  reapiPort?: string;
  reapi: boolean;
  reapiRun?: string;
}

export function syncerCommand(runner: Runner): Command {
  return new Command('syncer')
    .description('run the farm syncer: job queue, include trees and blobs over mutual TLS')
    .option('--port <port>', 'port to listen on (default: farm.port, 5000)')
    .option('--bind <address>', 'address to bind (default: farm.bind, 127.0.0.1)')
    .option('--reapi-port <port>', 'port for the Remote Execution API over gRPC (default: farm.reapiPort, 5001)')
    .option('--no-reapi', 'do not serve the Remote Execution API')
    .option(
      '--reapi-run <what>',
      'what REAPI actions may run: compilers (checked compiler, link, ar, strip calls) or any (any command, in the workers’ sandbox) (default: farm.reapiRun)',
    )
    .option('--dir <dir>', 'an include root to ship to workers (repeatable; adds to farm.dirs)', collect, [])
    .addHelpText(
      'after',
      `
Examples:
  $ accel certs issue syncer1 --role syncer && accel certs bundle syncer1 -o s.json && accel certs install s.json
  $ accel syncer --dir $PWD --bind 0.0.0.0
  $ accel syncer --reapi-run any     # Bazel's test runners and genrules run on the workers too
Status: https://HOST:5000/ (HTML) and /status (JSON), or \`accel farm status\`.`,
    )
    .action(
      runner.action(async (g, flags: SyncerFlags) => {
        const farm = g.config.farm;
        const host = parseBind(flags.bind ?? farm.bind, flags.bind === undefined ? 'farm.bind' : '--bind');
        const port = parsePort(flags.port ?? farm.port, flags.port === undefined ? 'farm.port' : '--port');
        const identity = loadIdentity(g.home, 'syncer');
        const stats = await withServingStore(g, async (store) => {
          const syncer = createSyncer({
            store,
            identity,
            log: g.log,
            home: g.home,
            host,
            port,
            dirs: [...farm.dirs, ...flags.dir.map((d) => resolve(d))],
            compilers: farm.compilers,
            leaseMs: farm.lease * 1000,
            reapiPort: flags.reapi
              ? parsePort(
                  flags.reapiPort ?? farm.reapiPort,
                  flags.reapiPort === undefined ? 'farm.reapiPort' : '--reapi-port',
                )
              : undefined,
            startTimeoutMs: farm.jobTimeout * 1000,
            reapiRun: parseReapiRun(flags.reapiRun ?? farm.reapiRun),
          });
          const address = await syncer.listen();
          const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
          g.log.info(
            `syncer listening on https://${shown}:${address.port}/ (${syncer.tree.files} files under ${syncer.tree.roots.join(', ') || 'no include dirs'})`,
          );
          const reapiPort = syncer.reapiPort();
          if (reapiPort !== undefined) g.log.info(`REAPI (gRPC) listening on grpcs://${shown}:${reapiPort}`);
          await runService(syncer);
          return syncer.status().queue;
        });
        g.log.info(`syncer stopped: ${stats.completed} jobs completed`);
        return dataResult(stats, () => '');
      }),
    );
}

function parseReapiRun(value: string): ReapiRun {
  if (value === 'compilers' || value === 'any') return value;
  throw new AccelError('ACCEL_USAGE_BAD_VALUE', `--reapi-run ${JSON.stringify(value)}: expected compilers or any`, {
    hint: 'compilers (the default) runs only checked compiler calls; any runs every command in the sandbox',
  });
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}
