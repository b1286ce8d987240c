import { availableParallelism } from 'node:os';
import { Command } from 'commander';
import { AccelError } from '../core/errors.ts';
import { createWorker } from '../farm/worker.ts';
import { parseBind, parsePort, parseServerUrl } from '../net/address.ts';
import { loadIdentity } from '../net/tls-identity.ts';
import { withServingStore } from './globals.ts';
import { parseCount } from './parse.ts';
import { dataResult } from './result.ts';
import type { Runner } from './runner.ts';
import { runService } from './service.ts';

interface WorkerFlags {
  cores?: string;
  syncer?: string;
  statusPort?: string;
  bind?: string;
  unsandboxed?: boolean;
  sandboxUser?: string;
}

export function workerCommand(runner: Runner): Command {
  return new Command('worker')
    .description('run a farm worker: take compile jobs from the syncer and run them in a sandbox')
    .option('--cores <n>', 'jobs at once (default: farm.cores, else one per CPU)')
    .option('--syncer <url>', "the syncer's URL (default: farm.syncer)")
    .option('--status-port <port>', 'port of /status (default: farm.statusPort, 8443)')
    .option('--bind <address>', 'address of /status (default: farm.bind, 127.0.0.1)')
    .option('--sandbox-user <name>', 'the unprivileged user a worker started as root runs jobs as', 'nobody')
    .option('--unsandboxed', 'run jobs without the bubblewrap sandbox: only for clients you trust with this account')
    .addHelpText(
      'after',
      `
Examples:
  $ accel certs install build1.json                     a bundle issued with --role worker
  $ accel worker --cores 8 --syncer https://syncer.lan:5000`,
    )
    .action(
      runner.action(async (g, flags: WorkerFlags) => {
        const farm = g.config.farm;
        const syncer = flags.syncer ?? farm.syncer;
        if (!syncer) {
          throw new AccelError('ACCEL_USAGE_NO_SYNCER', 'no syncer URL', {
            hint: 'pass --syncer https://HOST:5000 or set farm.syncer',
          });
        }
        parseServerUrl(syncer, flags.syncer === undefined ? 'farm.syncer' : '--syncer');
        const statusHost = parseBind(flags.bind ?? farm.bind, flags.bind === undefined ? 'farm.bind' : '--bind');
        const statusPort = parsePort(
          flags.statusPort ?? farm.statusPort,
          flags.statusPort === undefined ? 'farm.statusPort' : '--status-port',
        );
        const cores =
          flags.cores === undefined
            ? farm.cores || availableParallelism()
            : parseCount(flags.cores, '--cores', 'ACCEL_USAGE_BAD_CORES');
        const identity = loadIdentity(g.home, 'worker');
        const status = await withServingStore(g, async (store) => {
          const worker = createWorker({
            store,
            identity,
            log: g.log,
            home: g.home,
            syncer,
            cores,
            compilers: farm.compilers,
            jobTimeoutMs: farm.jobTimeout * 1000,
            statusHost,
            statusPort,
            env: g.env,
            unsandboxed: flags.unsandboxed === true,
            sandboxUser: flags.sandboxUser,
          });
          const address = await worker.listen();
          const compilers = Object.keys(worker.status().compilers);
          g.log.info(
            `worker ${identity.name}: ${cores} slots for ${syncer}, compilers ${compilers.join(', ') || 'none'}, status on https://${address.address}:${address.port}/status`,
          );
          await runService(worker);
          return worker.status();
        });
        g.log.info(`worker stopped: ${status.done} done, ${status.failed} failed`);
        return dataResult(status, () => '');
      }),
    );
}
