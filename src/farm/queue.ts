import { randomUUID } from 'node:crypto';
import { binutilOf } from '../compiler/tools.ts';
import type { Assignment, JobResult, JobSpec, TreeManifest, WorkerReport } from './protocol.ts';

/** A job leased to a worker: it is the worker's until `until` unless heartbeats extend it. */
interface Lease {
  worker: string;
  until: number;
}

interface Job {
  id: string;
  spec: JobSpec;
  /** The job's own input tree (an REAPI action's) and its digest, instead of the include tree's manifest. */
  inputs?: { digest: string; manifest: TreeManifest };
  state: 'queued' | 'leased' | 'done';
  lease?: Lease;
  attempts: number;
  /** Workers that could not take it (another toolchain), counted once each. */
  skippedBy: Set<string>;
  startTimer?: NodeJS.Timeout;
  finish: (result: JobResult) => void;
}

interface Waiter {
  worker: WorkerReport;
  give: (job: Job | undefined) => void;
}

interface QueueStats {
  submitted: number;
  /** Jobs a client sent again for the same compile (it found the include tree stale, or the syncer restarted). */
  resubmitted: number;
  completed: number;
  /** Results refused because the sender no longer held the lease (it was presumed dead). */
  lateResults: number;
  infraFailures: number;
  leaseExpiries: number;
  requeued: number;
  toolchainMismatches: number;
  notStarted: number;
  cancelled: number;
  /** Jobs refused by policy (at submission or by a worker). */
  refused: number;
  /** Jobs given back to their client to compile locally: not started in time, failed for good, or refused. */
  fallbacks: number;
}

/** Jobs retried this many times after infrastructure failures or lost leases give up (the client compiles). */
const MAX_ATTEMPTS = 3;

/**
 * The syncer's job queue. Workers pull (long poll), so an idle worker takes the next job as soon as it is
 * free: fast and slow machines stay busy without the syncer knowing their speed. Each job is leased to one
 * worker; an expired lease (worker died or hung) or an infrastructure failure puts it back at the head.
 * A result is accepted only from the lease holder, once: a late worker cannot duplicate or overwrite it.
 */
export class JobQueue {
  readonly stats: QueueStats = {
    submitted: 0,
    resubmitted: 0,
    completed: 0,
    lateResults: 0,
    infraFailures: 0,
    leaseExpiries: 0,
    requeued: 0,
    toolchainMismatches: 0,
    notStarted: 0,
    cancelled: 0,
    refused: 0,
    fallbacks: 0,
  };
  readonly workers = new Map<string, WorkerReport & { lastSeen: number }>();
  readonly #jobs = new Map<string, Job>();
  readonly #queued: Job[] = [];
  readonly #waiters: Waiter[] = [];
  readonly #completions: number[] = [];
  readonly #leaseMs: number;
  readonly #manifest: () => string;
  readonly #sweeper: NodeJS.Timeout;

  constructor(options: { leaseMs: number; manifest: () => string }) {
    this.#leaseMs = options.leaseMs;
    this.#manifest = options.manifest;
    this.#sweeper = setInterval(() => this.#expireLeases(), Math.min(1000, this.#leaseMs / 3));
    this.#sweeper.unref();
  }

  get queued(): number {
    return this.#queued.length;
  }

  get running(): number {
    let n = 0;
    for (const job of this.#jobs.values()) if (job.state === 'leased') n++;
    return n;
  }

  /** Completed jobs per second over the last 10 s. */
  jobsPerSecond(now = Date.now()): number {
    while (this.#completions.length > 0 && (this.#completions[0] as number) < now - 10_000) this.#completions.shift();
    return this.#completions.length / 10;
  }

  /** Counts a job refused before it was queued (the client compiles it locally). */
  refusedAtSubmit(): void {
    this.stats.refused++;
    this.stats.fallbacks++;
  }

  /** Queues a job; resolves with its result. `cancel` drops it (the client went away). */
  submit(
    spec: JobSpec,
    inputs?: { digest: string; manifest: TreeManifest },
  ): { id: string; result: Promise<JobResult>; cancel: () => void } {
    const id = randomUUID();
    let finish!: (r: JobResult) => void;
    const result = new Promise<JobResult>((resolve) => {
      finish = resolve;
    });
    const job: Job = { id, spec, inputs, state: 'queued', attempts: 0, skippedBy: new Set(), finish };
    this.#jobs.set(id, job);
    this.stats.submitted++;
    if ((spec.submission ?? 1) > 1) this.stats.resubmitted++;
    this.#armStartTimer(job);
    this.#enqueue(job, false);
    return {
      id,
      result,
      cancel: () => {
        if (job.state === 'done') return;
        this.stats.cancelled++;
        this.#finish(job, { status: 'failed', reason: 'cancelled by the client' });
      },
    };
  }

  /** The next job this worker can run, waiting up to `waitMs` for one. */
  take(worker: WorkerReport, waitMs: number): Promise<Assignment | undefined> {
    this.#seen(worker);
    const job = this.#pick(worker);
    if (job) return Promise.resolve(this.#lease(job, worker));
    return new Promise((resolve) => {
      const waiter: Waiter = {
        worker,
        give: (j) => {
          clearTimeout(timer);
          resolve(j ? this.#lease(j, worker) : undefined);
        },
      };
      const timer = setTimeout(() => {
        const i = this.#waiters.indexOf(waiter);
        if (i >= 0) this.#waiters.splice(i, 1);
        resolve(undefined);
      }, waitMs);
      this.#waiters.push(waiter);
    });
  }

  /** Drops a waiting worker whose connection closed, so no job is handed to a dead socket. */
  forget(worker: WorkerReport): void {
    for (let i = this.#waiters.length - 1; i >= 0; i--) {
      const w = this.#waiters[i] as Waiter;
      if (w.worker === worker) {
        this.#waiters.splice(i, 1);
        w.give(undefined);
      }
    }
  }

  /**
   * Whether a worker seen in the last `withinMs` (asking for work or renewing a lease) has this compiler;
   * undefined or a binutil: any worker (a command runs in any worker's sandbox; every worker has ar).
   */
  hasWorkerFor(compiler: string | undefined, withinMs: number, now = Date.now()): boolean {
    for (const w of this.workers.values()) {
      if (now - w.lastSeen >= withinMs) continue;
      if (compiler === undefined || binutilOf(compiler) || w.toolchains.some((t) => t.startsWith(`${compiler} `)))
        return true;
    }
    return false;
  }

  /** Extends the lease; false when the job is no longer this worker's (it should stop). */
  heartbeat(id: string, worker: string): boolean {
    const seen = this.workers.get(worker);
    if (seen) seen.lastSeen = Date.now();
    const job = this.#jobs.get(id);
    if (job?.state !== 'leased' || job.lease?.worker !== worker) return false;
    job.lease.until = Date.now() + this.#leaseMs;
    return true;
  }

  /** Accepts the lease holder's result; false when it is not (late, or the job was re-leased). */
  complete(id: string, worker: string, result: JobResult): boolean {
    const job = this.#jobs.get(id);
    if (job?.state !== 'leased' || job.lease?.worker !== worker) {
      this.stats.lateResults++;
      return false;
    }
    if (result.status === 'failed') {
      this.stats.infraFailures++;
      if (result.retry !== false && job.attempts < MAX_ATTEMPTS) {
        this.#requeue(job);
        return true;
      }
    }
    this.#finish(job, result);
    return true;
  }

  close(): void {
    clearInterval(this.#sweeper);
    // Clients resubmit on this answer, to the restarted syncer.
    for (const job of this.#jobs.values()) {
      if (job.state !== 'done') this.#finish(job, { status: 'failed', reason: 'syncer shutting down' });
    }
    for (const w of this.#waiters.splice(0)) w.give(undefined);
  }

  #seen(worker: WorkerReport): void {
    this.workers.set(worker.id, { ...worker, lastSeen: Date.now() });
  }

  #pick(worker: WorkerReport): Job | undefined {
    for (let i = 0; i < this.#queued.length; i++) {
      const job = this.#queued[i] as Job;
      if (this.#fits(job, worker)) {
        this.#queued.splice(i, 1);
        return job;
      }
    }
    return undefined;
  }

  #fits(job: Job, worker: WorkerReport): boolean {
    // An REAPI action names its compiler only: any worker that has one takes it; a command or a binutil (ar,
    // strip: every worker has them), any worker.
    const { toolchain, compiler, run } = job.spec;
    if (run === 'command' || (!toolchain && binutilOf(compiler))) return true;
    if (toolchain ? worker.toolchains.includes(toolchain) : worker.toolchains.some((t) => t.startsWith(`${compiler} `)))
      return true;
    if (!job.skippedBy.has(worker.id)) {
      job.skippedBy.add(worker.id);
      this.stats.toolchainMismatches++;
    }
    return false;
  }

  #enqueue(job: Job, front: boolean): void {
    job.state = 'queued';
    job.lease = undefined;
    for (let i = 0; i < this.#waiters.length; i++) {
      const w = this.#waiters[i] as Waiter;
      if (this.#fits(job, w.worker)) {
        this.#waiters.splice(i, 1);
        w.give(job);
        return;
      }
    }
    if (front) this.#queued.unshift(job);
    else this.#queued.push(job);
  }

  #lease(job: Job, worker: WorkerReport): Assignment {
    job.state = 'leased';
    job.attempts++;
    job.lease = { worker: worker.id, until: Date.now() + this.#leaseMs };
    clearTimeout(job.startTimer);
    if (job.inputs) {
      const { digest, manifest } = job.inputs;
      return { id: job.id, spec: job.spec, manifest: digest, inputs: manifest, leaseMs: this.#leaseMs };
    }
    return { id: job.id, spec: job.spec, manifest: this.#manifest(), leaseMs: this.#leaseMs };
  }

  /** A queued job that no worker starts in time goes back to its client, which compiles locally. */
  #armStartTimer(job: Job): void {
    clearTimeout(job.startTimer);
    job.startTimer = setTimeout(() => {
      if (job.state !== 'queued') return;
      this.stats.notStarted++;
      this.#finish(job, { status: 'not-started' });
    }, job.spec.startTimeoutMs);
  }

  #requeue(job: Job): void {
    this.stats.requeued++;
    this.#armStartTimer(job);
    this.#enqueue(job, true);
  }

  #expireLeases(): void {
    const now = Date.now();
    for (const job of this.#jobs.values()) {
      if (job.state !== 'leased' || (job.lease?.until ?? 0) > now) continue;
      this.stats.leaseExpiries++;
      if (job.attempts < MAX_ATTEMPTS) this.#requeue(job);
      else this.#finish(job, { status: 'failed', reason: `lease expired ${job.attempts} times` });
    }
  }

  #finish(job: Job, result: JobResult): void {
    clearTimeout(job.startTimer);
    const i = this.#queued.indexOf(job);
    if (i >= 0) this.#queued.splice(i, 1);
    job.state = 'done';
    this.#jobs.delete(job.id);
    if (result.status === 'done') {
      this.stats.completed++;
      this.#completions.push(Date.now());
    } else if (result.status === 'refused') {
      this.stats.refused++;
      this.stats.fallbacks++;
    } else if (result.status === 'not-started' || result.reason !== 'syncer shutting down') this.stats.fallbacks++;
    job.finish(result);
  }
}
