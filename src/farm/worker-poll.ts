import { executeJob } from './job-runner.ts';
import { type Assignment, AssignmentSchema, type JobResult, parseMessage } from './protocol.ts';
import type { WorkerContext } from './worker-context.ts';
import { workerReport } from './worker-status.ts';

/** How often a worker repeats that its syncer cannot be reached, while it cannot. */
const UNREACHABLE_REPEAT_MS = 30_000;

/**
 * A worker's slots, each asking the syncer for the next job (so an idle machine takes work as soon as it has a
 * free slot), holding the job's lease while it runs and sending its result back.
 */
export class WorkerPolls {
  readonly #ctx: WorkerContext;
  readonly #loops: Promise<void>[] = [];
  readonly #polls = new Set<AbortController>();
  /**
   * Whether the syncer answers, shared by the slots: the first failed poll says so at once, then every 30 s
   * while it lasts, and the first answer after says it is back (a worker whose syncer is down is not silent).
   */
  readonly #reach = { down: false, lastWarned: 0 };

  constructor(ctx: WorkerContext) {
    this.#ctx = ctx;
  }

  start(slots: number): void {
    for (let i = 0; i < slots; i++) this.#loops.push(this.#slot());
  }

  /** Ends the polls waiting for work; the slots end once ctx.closing is set and their jobs are done. */
  abort(): void {
    for (const p of this.#polls) p.abort();
  }

  async settled(): Promise<void> {
    await Promise.allSettled(this.#loops);
  }

  #unreachable(err: Error): void {
    const now = Date.now();
    if (this.#reach.down && now - this.#reach.lastWarned < UNREACHABLE_REPEAT_MS) return;
    this.#ctx.options.log.warn(`cannot reach the syncer at ${this.#ctx.options.syncer} (${err.message}), retrying`);
    this.#reach.down = true;
    this.#reach.lastWarned = now;
  }

  #reached(): void {
    if (!this.#reach.down) return;
    this.#reach.down = false;
    this.#ctx.options.log.info(`the syncer at ${this.#ctx.options.syncer} answers again`);
  }

  async #slot(): Promise<void> {
    const ctx = this.#ctx;
    while (!ctx.closing) {
      const abort = new AbortController();
      this.#polls.add(abort);
      let job: Assignment | undefined;
      try {
        const res = await ctx.client.request('POST', '/work', workerReport(ctx), { signal: abort.signal });
        this.#reached();
        if (res.status === 200) job = parseMessage(AssignmentSchema, JSON.parse(res.body.toString()), 'assignment');
        else if (res.status !== 204) throw new Error(`syncer answered ${res.status}: ${res.body.toString()}`);
      } catch (err) {
        if (ctx.closing) return;
        this.#unreachable(err as Error);
        // The syncer is down or restarting: ask again shortly.
        await new Promise((r) => setTimeout(r, 500));
      } finally {
        this.#polls.delete(abort);
      }
      if (job) await this.#run(job);
    }
  }

  async #run(job: Assignment): Promise<void> {
    const { client, counters, id } = this.#ctx;
    counters.running++;
    const lost = new AbortController();
    const beat = setInterval(
      () => {
        client
          .request('POST', `/jobs/${job.id}/heartbeat?worker=${encodeURIComponent(id)}`)
          .then((r) => {
            if (r.status === 410) lost.abort();
          })
          .catch(() => {});
      },
      Math.max(200, job.leaseMs / 3),
    );
    let result: JobResult;
    try {
      result = await executeJob(this.#ctx, job, lost.signal);
    } catch (err) {
      result = { status: 'failed', reason: `worker ${this.#ctx.options.identity.name}: ${(err as Error).message}` };
    } finally {
      clearInterval(beat);
      counters.running--;
    }
    if (result.status === 'done') counters.done++;
    else if (result.status === 'refused') counters.refused++;
    else counters.failed++;
    for (let attempt = 0; attempt < 5 && !this.#ctx.closing; attempt++) {
      try {
        await client.request('POST', `/jobs/${job.id}/result?worker=${encodeURIComponent(id)}`, result);
        return;
      } catch {
        await new Promise((r) => setTimeout(r, 300 * (attempt + 1)));
      }
    }
  }
}
