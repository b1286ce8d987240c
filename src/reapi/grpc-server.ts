import * as grpc from '@grpc/grpc-js';
import { AccelError } from '../core/errors.ts';
import type { Log } from '../core/log.ts';

const MAX_MESSAGE = 8 * 1024 * 1024;

/** A service as the services/ files make it: its grpc-js definition and its handlers. */
export interface ServiceEntry {
  definition: grpc.ServiceDefinition;
  implementation: grpc.UntypedServiceImplementation;
}

/** Where a gRPC server listens, and how a failure to listen is explained. */
interface GrpcListen {
  host: string;
  port: number;
  credentials: grpc.ServerCredentials;
  /** What the port is, for messages: 'the REAPI port'. */
  what: string;
  /** How to get out of the way of a port in use. */
  hint: string;
}

/** A gRPC server with accel's message limits, its diagnostics sent to `log` at debug level, serving `entries`. */
export function createGrpcServer(log: Log, entries: ServiceEntry[]) {
  // grpc-js writes its own diagnostics to stderr; ours say the same with a code and a hint (--debug shows its).
  grpc.setLogger({ error: (...args: unknown[]) => log.debug(`grpc: ${args.map(String).join(' ')}`) } as Console);
  const server = new grpc.Server({
    'grpc.max_receive_message_length': MAX_MESSAGE,
    'grpc.max_send_message_length': MAX_MESSAGE,
  });
  for (const e of entries) server.addService(e.definition, e.implementation);
  let bound = 0;
  return {
    async listen(where: GrpcListen): Promise<number> {
      const address = where.host.includes(':') ? `[${where.host}]:${where.port}` : `${where.host}:${where.port}`;
      bound = await new Promise<number>((resolve, reject) => {
        server.bindAsync(address, where.credentials, (err, port) => {
          if (!err) return resolve(port);
          const inUse = /EADDRINUSE|address already in use/i.test(err.message);
          reject(
            new AccelError(
              inUse ? 'ACCEL_NET_PORT_IN_USE' : 'ACCEL_NET_CANNOT_LISTEN',
              inUse
                ? `${address} (${where.what}) is already in use`
                : `cannot listen on ${address} for ${where.what}: ${err.message}`,
              { hint: where.hint, exitCode: 2 },
            ),
          );
        });
      });
      return bound;
    },
    port: () => bound,
    /** Lets calls in flight finish for up to 2 s, then ends them. */
    close(): Promise<void> {
      return new Promise((resolve) => {
        const timer = setTimeout(() => server.forceShutdown(), 2000);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
  };
}
