import type { CompileFn } from '../compiler/run.ts';
import type { Config } from '../core/config.ts';
import type { Store } from '../store/store.ts';

/**
 * The farm's side of `accel cc`: a cache miss becomes a job on the syncer (src/farm/client.ts). When the farm
 * cannot do it (unreachable, no worker in time, infrastructure failure, a refused argument), the compile runs
 * here and `fallback` says why; the wrapper counts it and announces it. With farm.reapi the miss goes to a
 * Remote Execution API engine instead (src/farm/reapi/client.ts). Undefined without either.
 * The client code loads only on a miss: a hit must not pay for HTTPS and certificate parsing.
 */
export function farmCompileFn(config: Config, home: string, store: Store): CompileFn | undefined {
  if (config.farm.reapi) {
    return async (compilerPath, args, options) => {
      const { reapiCompile } = await import('./reapi/client.ts');
      return reapiCompile(config, home, { compilerPath, args, options });
    };
  }
  if (!config.farm.syncer) return undefined;
  return async (compilerPath, args, options) => {
    const { farmCompile } = await import('./client.ts');
    return farmCompile(config, home, store, { compilerPath, args, options });
  };
}
