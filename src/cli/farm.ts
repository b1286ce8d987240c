import { Command } from 'commander';
import { AccelError } from '../core/errors.ts';
import type { FarmStatus } from '../farm/syncer.ts';
import { parseServerUrl } from '../net/address.ts';
import { MtlsClient } from '../net/client.ts';
import { loadIdentity } from '../net/tls-identity.ts';
import { dataResult } from './result.ts';
import type { Runner } from './runner.ts';

export function farmCommand(runner: Runner): Command {
  const farm = new Command('farm').description('the compile farm as a whole');
  farm
    .command('status')
    .description('workers, cores, queue, jobs per second and failures, from the syncer')
    .option('--syncer <url>', "the syncer's URL (default: farm.syncer)")
    .action(
      runner.action(async (g, flags: { syncer?: string }) => {
        const url = flags.syncer ?? g.config.farm.syncer;
        if (!url) {
          throw new AccelError('ACCEL_USAGE_NO_SYNCER', 'no syncer URL', {
            hint: 'pass --syncer https://HOST:5000 or set farm.syncer',
          });
        }
        parseServerUrl(url, flags.syncer === undefined ? 'farm.syncer' : '--syncer');
        const client = new MtlsClient(url, loadIdentity(g.home));
        try {
          const res = await client.request('GET', '/status', undefined, { timeoutMs: 10_000 }).catch((err: Error) => {
            throw new AccelError('ACCEL_FARM_UNREACHABLE', `cannot reach the syncer at ${url}: ${err.message}`, {
              hint: 'is `accel syncer` running, and is this machine’s certificate from the same installation?',
            });
          });
          if (res.status !== 200) {
            const body = JSON.parse(res.body.toString() || '{}');
            throw new AccelError('ACCEL_FARM_REFUSED', `the syncer answered ${res.status}: ${body.message ?? ''}`);
          }
          const s = JSON.parse(res.body.toString()) as FarmStatus;
          return dataResult(s, () => formatStatus(s));
        } finally {
          client.close();
        }
      }),
    );
  return farm;
}

function formatStatus(s: FarmStatus): string {
  const q = s.queue;
  return [
    `syncer:    ${s.syncer.url}`,
    `workers:   ${s.workers.length} (${s.cores} cores)`,
    ...s.workers.map((w) => `  ${w.name}: ${w.cores} cores, ${w.running} running, ${w.done} done, ${w.failed} failed`),
    `queue:     ${q.queued} queued, ${q.running} running, ${q.jobsPerSecond.toFixed(1)} jobs/s`,
    `jobs:      ${q.submitted} submitted, ${q.completed} completed, ${q.resubmitted} resent`,
    `fallbacks: ${q.fallbacks} given back to clients (${q.notStarted} not started in time, ${q.refused} refused)`,
    `failures:  ${q.infraFailures} infrastructure, ${q.leaseExpiries} lease expiries, ${q.requeued} requeued`,
    `toolchain mismatches: ${q.toolchainMismatches}`,
    `include tree: ${s.syncer.files} files, manifest ${s.syncer.manifest.slice(0, 12)} (${s.syncer.publishes} published)`,
  ].join('\n');
}
