import { join, resolve } from 'node:path';
import { AccelError } from '../core/errors.ts';
import { appendLineOnce, type ClientConfig } from './client-config.ts';

/**
 * Bazel's other way through the mirror: the Remote Asset API. `--experimental_remote_downloader` hands every
 * http_archive/http_file download to the mirror's gRPC port (FetchBlob), and `--remote_cache` on the same port
 * is where Bazel reads the fetched blob (and caches its build outputs). The token header lets Bazel write to
 * the cache; without it, Bazel's uploads are refused and downloads still work.
 */
export function bazelGrpcConfig(grpcUrl: string, token: string): ClientConfig {
  return {
    files: [],
    lines: [
      '# .bazelrc lines (Bazel 4 or later): downloads through the mirror, outputs cached on it',
      ...bazelGrpcLines(grpcUrl, token),
      '# The header carries the cache write token: keep a .bazelrc holding it out of version control',
      '# (put these lines in ~/.bazelrc or a try-import file instead).',
    ],
  };
}

export function bazelGrpcLines(grpcUrl: string, token: string): string[] {
  return [
    `build --experimental_remote_downloader=${grpcUrl}`,
    `build --remote_cache=${grpcUrl}`,
    `build --remote_header=authorization=Bearer ${token}`,
  ];
}

/** `grpc://HOST:PORT` for the mirror's gRPC port; a URL a user gave is checked, never guessed at. */
export function mirrorGrpcUrl(explicit: string | undefined, bind: string, grpcPort: number | string): string {
  if (explicit !== undefined) {
    if (!/^grpcs?:\/\/[^/\s]+$/.test(explicit)) {
      throw new AccelError('ACCEL_USAGE_BAD_URL', `--grpc-url must be grpc://HOST:PORT, not '${explicit}'`, {
        exitCode: 2,
      });
    }
    return explicit;
  }
  if (grpcPort === '') {
    throw new AccelError('ACCEL_USAGE_NO_GRPC_PORT', 'the mirror serves no gRPC port (mirror.grpcPort is empty)', {
      hint: 'set mirror.grpcPort (and serve with it), or name the port: --grpc-url grpc://HOST:PORT',
      exitCode: 2,
    });
  }
  const host = bind === '0.0.0.0' || bind === '::' ? '127.0.0.1' : bind.includes(':') ? `[${bind}]` : bind;
  return `grpc://${host}:${grpcPort}`;
}

/** Appends the lines to `<workspace>/.bazelrc`, each once, so running it twice is harmless. */
export function writeBazelGrpcConfig(workspace: string, grpcUrl: string, token: string): { bazelrc: string } {
  const bazelrc = join(resolve(workspace), '.bazelrc');
  for (const line of bazelGrpcLines(grpcUrl, token))
    appendLineOnce(bazelrc, line, `# accel mirror (gRPC) at ${grpcUrl}`);
  return { bazelrc };
}
