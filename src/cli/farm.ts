import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { Command } from 'commander';
import type { Config } from '../core/config.ts';
import { AccelError } from '../core/errors.ts';
import { type BazelFarmPolicy, bazelFarmConfig, writeBazelrcBlock } from '../farm/bazel-config.ts';
import type { FarmStatus } from '../farm/status.ts';
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
        const s = await fetchStatus(g.home, url);
        return dataResult(s, () => formatStatus(s));
      }),
    );
  farm
    .command('config')
    .description('print (or write) the settings that point a build tool at the farm')
    .argument('<tool>', 'bazel')
    .option('--reapi <url>', 'the REAPI endpoint (default: farm.reapi, else farm.syncer’s host at farm.reapiPort)')
    .option('--cache-only', 'use the farm as a remote cache only (--remote_cache), building locally')
    .option('--syncer <url>', 'the syncer to ask for its cores and policy (default: farm.syncer)')
    .option('--jobs <n>', 'Bazel’s --jobs (default: the farm’s cores plus this machine’s CPUs)')
    .option('--reapi-run <what>', 'the syncer’s farm.reapiRun, compilers or any (default: what the syncer says)')
    .option('--write <workspace>', 'write the lines into this workspace’s .bazelrc (replacing an earlier accel block)')
    .addHelpText(
      'after',
      `
Examples:
  $ accel farm config bazel --write .
  $ accel farm config bazel --reapi grpcs://build-farm:5001 --cache-only >> ~/.bazelrc
  $ accel farm config bazel --syncer https://build-farm:5000 --write .   # --jobs from the farm's cores`,
    )
    .action(
      runner.action(async (g, tool: string, flags: ConfigFlags) => {
        if (tool !== 'bazel') {
          throw new AccelError('ACCEL_USAGE_BAD_TOOL', `no farm config for '${tool}'`, { hint: 'known: bazel' });
        }
        const endpoint = reapiEndpoint(flags.reapi, g.config.farm);
        const policy = flags.cacheOnly ? undefined : await farmPolicy(g.home, g.config.farm, flags, g.log);
        const config = bazelFarmConfig(g.home, endpoint, flags.cacheOnly ? 'cache' : 'execute', policy);
        for (const w of config.warnings) g.log.warn(w);
        if (flags.write !== undefined) {
          const file = writeBazelrcBlock(resolve(flags.write), config.lines);
          return dataResult({ ...config, bazelrc: file }, () => `updated ${file}:\n${config.lines.join('\n')}`);
        }
        return dataResult(config, () => config.lines.join('\n'));
      }),
    );
  return farm;
}

interface ConfigFlags {
  reapi?: string;
  cacheOnly?: boolean;
  write?: string;
  syncer?: string;
  jobs?: string;
  reapiRun?: string;
}

/**
 * What Bazel's lines are sized for: --jobs and --reapi-run as given, else what the syncer's /status says (its
 * workers' cores, its farm.reapiRun); without a syncer to ask, this machine's CPUs and `compilers`, said so.
 */
async function farmPolicy(
  home: string,
  farm: Config['farm'],
  flags: ConfigFlags,
  log: { warn(message: string): void },
): Promise<BazelFarmPolicy> {
  const local = availableParallelism();
  let jobs: number | undefined;
  if (flags.jobs !== undefined) {
    jobs = Number(flags.jobs);
    if (!Number.isInteger(jobs) || jobs < 1 || jobs > 100_000) {
      throw new AccelError('ACCEL_USAGE_BAD_NUMBER', `--jobs ${flags.jobs}: expected a whole number from 1`, {
        hint: 'the actions Bazel keeps in flight, e.g. --jobs 64 for a farm of 64 cores',
      });
    }
  }
  let reapiRun = flags.reapiRun;
  if (reapiRun !== undefined && reapiRun !== 'compilers' && reapiRun !== 'any') {
    throw new AccelError('ACCEL_USAGE_BAD_VALUE', `--reapi-run ${reapiRun}: expected compilers or any`, {
      hint: 'the syncer’s farm.reapiRun: compilers (the default) or any',
    });
  }
  const url = flags.syncer ?? farm.syncer;
  if ((jobs === undefined || reapiRun === undefined) && url) {
    parseServerUrl(url, flags.syncer === undefined ? 'farm.syncer' : '--syncer');
    const status = await fetchStatus(home, url);
    // The farm's slots stay busy while Bazel moves other actions' inputs and outputs; fallbacks run here.
    jobs ??= status.cores + local;
    reapiRun ??= status.syncer.reapiRun ?? 'compilers';
  } else if (jobs === undefined || reapiRun === undefined) {
    log.warn(
      `no syncer to ask (--syncer or farm.syncer): --jobs=${jobs ?? local} (this machine's CPUs) and policy ${reapiRun ?? 'compilers'}; pass --jobs and --reapi-run to choose`,
    );
  }
  return { jobs: jobs ?? local, reapiRun: (reapiRun ?? 'compilers') as BazelFarmPolicy['reapiRun'] };
}

async function fetchStatus(home: string, url: string): Promise<FarmStatus> {
  const client = new MtlsClient(url, loadIdentity(home));
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
    return JSON.parse(res.body.toString()) as FarmStatus;
  } finally {
    client.close();
  }
}

/** --reapi, else farm.reapi, else the syncer's host at farm.reapiPort. */
function reapiEndpoint(flag: string | undefined, farm: Config['farm']): string {
  const url = flag ?? (farm.reapi || (farm.syncer ? syncerReapi(farm.syncer, farm.reapiPort) : ''));
  if (!url) {
    throw new AccelError('ACCEL_USAGE_NO_SYNCER', 'no REAPI endpoint', {
      hint: 'pass --reapi grpcs://HOST:5001, or set farm.reapi or farm.syncer',
    });
  }
  if (!/^grpcs?:\/\/[^/\s]+$/.test(url)) {
    throw new AccelError(
      'ACCEL_USAGE_BAD_URL',
      `${flag === undefined ? 'farm.reapi' : '--reapi'} must look like grpcs://HOST:PORT, not '${url}'`,
    );
  }
  return url;
}

function syncerReapi(syncer: string, port: number): string {
  return `grpcs://${new URL(syncer).hostname}:${port}`;
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
