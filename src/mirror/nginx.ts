import { AccelError } from '../core/errors.ts';
import { frontDir } from './front.ts';

export interface NginxSiteOptions {
  /** The accel store (its front tree is what nginx serves). */
  home: string;
  /** Where accel's mirror listens, e.g. http://127.0.0.1:8000. */
  accel: string;
  /** What nginx listens on: a port, or address:port. */
  listen: string;
  /** The mirror's bearer token (`mirror.token`): nginx asks for it too, before serving anything. */
  token: string;
}

/** `8080`, `127.0.0.1:8080`, `[::1]:8080` or `host:8080`: nothing nginx would read as more directives. */
const LISTEN = /^(?:(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):)?\d{1,5}$/;

/**
 * What goes into the site must stay one value each: `--listen 8080; include /etc/shadow` would add
 * directives, and nginx expands `$` inside quoted strings (a `$` in the store path or the token would turn
 * into a variable), so such values are refused rather than written.
 */
function checkSafe(options: NginxSiteOptions): void {
  if (!LISTEN.test(options.listen)) {
    throw new AccelError('ACCEL_USAGE_BAD_LISTEN', `--listen must be PORT or ADDRESS:PORT, not '${options.listen}'`, {
      hint: 'for example --listen 127.0.0.1:8080',
      exitCode: 2,
    });
  }
  for (const [what, value] of [
    ['the store path', options.home],
    ['mirror.token', options.token],
  ] as const) {
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
    if (/[$"\\\x00-\x1f\x7f]/.test(value)) {
      throw new AccelError('ACCEL_MIRROR_NGINX_UNSAFE', `${what} holds a character nginx would not keep as written`, {
        hint: 'nginx expands $ and ends strings at quotes: use a store path and a token without $, quotes, backslashes or control characters',
      });
    }
  }
}

/** A value for nginx's configuration language, in double quotes (checkSafe has refused what it cannot hold). */
function quoted(value: string): string {
  return `"${value}"`;
}

/**
 * An nginx site in front of `accel mirror serve`: nginx serves immutable hits itself, from the front tree
 * (symbolic links into the store, see front.ts) with sendfile and without asking accel; everything else (misses,
 * content that must be revalidated, queries such as `?sha256=`, other methods, apt epochs under `/r/`, the
 * build cache, status pages) is proxied to accel, streaming, with long timeouts for slow upstreams.
 */
export function nginxSite(options: NginxSiteOptions): string {
  const accel = new URL(options.accel);
  const root = frontDir(options.home);
  checkSafe(options);
  const auth = options.token
    ? [
        '    # mirror.token is set: nothing is served without it, from the tree or from accel.',
        `    if ($http_authorization != ${quoted(`Bearer ${options.token}`)}) { return 401; }`,
      ]
    : [];
  return [
    `# accel mirror behind nginx (accel mirror config nginx). nginx serves what accel stored as immutable`,
    `# straight from ${root} with sendfile; everything else goes to accel at ${accel.origin}.`,
    '# The nginx worker user must be able to read the store: make it a shared store (store.shared: true,',
    '# ACCEL_HOME on a group-owned directory) and put the nginx user in that group, or run nginx as the',
    "# store's user.",
    'upstream accel_mirror {',
    `    server ${accel.host};`,
    '    keepalive 32;',
    '}',
    '',
    'server {',
    `    listen ${options.listen};`,
    '    access_log off;',
    '    client_max_body_size 0;',
    ...auth,
    '',
    '    # Immutable hits: the front tree has a link per URL accel may serve forever. Anything with a query or',
    '    # another method, and any path without a link (a miss, or a link whose blob gc evicted), goes to accel.',
    '    location ~ ^/(https?|r/[A-Za-z0-9._-]+/pool)/ {',
    `        root ${quoted(root)};`,
    '        sendfile on;',
    '        tcp_nopush on;',
    '        tcp_nodelay on;',
    '        default_type application/octet-stream;',
    '        error_page 418 = @accel;',
    '        if ($args != "") { return 418; }',
    '        if ($request_method !~ ^(GET|HEAD)$) { return 418; }',
    '        # Links and blobs never change (a blob gc removes takes its link along): keep their lookups.',
    '        open_file_cache max=10000 inactive=60s;',
    '        open_file_cache_valid 60s;',
    "        # No add_header here: one extra response header made nginx's p99 for 100 KB hits 36 ms instead of 2.6",
    "        # (measured, bench/mirror.ts). Front hits are the responses without accel's X-Accel-Cache header.",
    '        try_files $uri @accel;',
    '    }',
    '',
    '    location / {',
    '        try_files /nonexistent @accel;',
    '    }',
    '',
    '    location @accel {',
    '        proxy_pass http://accel_mirror;',
    '        proxy_http_version 1.1;',
    '        proxy_set_header Connection "";',
    '        proxy_set_header Host $http_host;',
    '        # Bytes reach the client as the upstream sends them, and a slow upstream is not cut off.',
    '        proxy_buffering off;',
    '        proxy_request_buffering off;',
    '        proxy_read_timeout 1h;',
    '        proxy_send_timeout 1h;',
    '    }',
    '}',
    '',
  ].join('\n');
}
