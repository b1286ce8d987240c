import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { AccelError } from '../../src/core/errors.ts';
import { parseBazelFile, parseUrlList, readWantedFiles, sriToDigest } from '../../src/mirror/wanted.ts';
import { sha256, tempDir } from '../helpers.ts';

const A = sha256('archive a');
const B = sha256('archive b');

function isBadList(where: string) {
  return (e: unknown) =>
    e instanceof AccelError && e.code === 'ACCEL_MIRROR_BAD_LIST' && e.exitCode === 2 && e.message.startsWith(where);
}

test('parseUrlList reads `url [sha256]` lines and skips comments and blank lines', () => {
  const text = [
    '# files for the offline build',
    '',
    `https://example.invalid/a-1.0.tar.gz ${A}`,
    `  http://example.invalid/b.zip   sha256:${B.toUpperCase()}  # pinned`,
    'https://example.invalid/page#section',
    '\t',
  ].join('\r\n');
  assert.deepEqual(parseUrlList(text, 'deps.txt'), [
    { urls: ['https://example.invalid/a-1.0.tar.gz'], sha256: A, source: 'deps.txt:3' },
    { urls: ['http://example.invalid/b.zip'], sha256: B, source: 'deps.txt:4' },
    { urls: ['https://example.invalid/page#section'], source: 'deps.txt:5' },
  ]);
});

test('parseUrlList names the file and line of a bad entry', () => {
  const bad: [string, string][] = [
    ['ftp://example.invalid/x.tar.gz', 'not an http or https URL'],
    ['example.invalid/x.tar.gz', 'not an http or https URL'],
    ['https://example.invalid/x.tar.gz abc123', 'not a sha256 checksum'],
    [`https://example.invalid/x.tar.gz md5:${A}`, 'not a sha256 checksum'],
    [`https://example.invalid/x.tar.gz ${A} extra`, "unexpected field 'extra'"],
  ];
  for (const [line, what] of bad) {
    const text = `# header\nhttps://example.invalid/ok.tar.gz\n${line}\n`;
    assert.throws(() => parseUrlList(text, 'list.txt'), isBadList('list.txt:3: '), line);
    assert.throws(() => parseUrlList(text, 'list.txt'), { message: new RegExp(what) }, line);
  }
});

test('parseBazelFile: http_archive with a sha256 and two urls, other arguments ignored', () => {
  const text = `load("@bazel_tools//tools/build_defs/repo:http.bzl", "http_archive")

http_archive(
    name = "zlib",
    build_file = "//third_party:zlib.BUILD",
    sha256 = "${A}",
    strip_prefix = "zlib-1.3.1",
    urls = [
        "https://example.invalid/zlib/zlib-1.3.1.tar.gz",
        "https://github.com/madler/zlib/releases/download/v1.3.1/zlib-1.3.1.tar.gz",
    ],
)
`;
  assert.deepEqual(parseBazelFile(text, 'WORKSPACE'), [
    {
      urls: [
        'https://example.invalid/zlib/zlib-1.3.1.tar.gz',
        'https://github.com/madler/zlib/releases/download/v1.3.1/zlib-1.3.1.tar.gz',
      ],
      sha256: A,
      source: 'WORKSPACE:3',
    },
  ]);
});

test('parseBazelFile: http_file with url and an SRI integrity converted to hex', () => {
  const sri = `sha256-${Buffer.from(B, 'hex').toString('base64')}`;
  assert.equal(sriToDigest(sri), B);
  assert.equal(sriToDigest('sha384-abc'), undefined);
  const text = `http_file(name = "tool", url = 'https://example.invalid/tool-2.1.bin', integrity = "${sri}", executable = True)`;
  assert.deepEqual(parseBazelFile(text, 'deps.bzl'), [
    { urls: ['https://example.invalid/tool-2.1.bin'], sha256: B, source: 'deps.bzl:1' },
  ]);
});

test('parseBazelFile: TensorFlow-style urls = tf_mirror_urls(...) belong to the enclosing archive', () => {
  const text = `def repo():
    tf_http_archive(
        name = "y",
        sha256 = "${A}",
        strip_prefix = "y-1",
        urls = tf_mirror_urls("https://github.com/x/y/archive/v1.tar.gz"),
    )
`;
  assert.deepEqual(parseBazelFile(text, 'workspace.bzl'), [
    { urls: ['https://github.com/x/y/archive/v1.tar.gz'], sha256: A, source: 'workspace.bzl:2' },
  ]);
});

test('parseBazelFile skips comments and strings: fake calls, parentheses and quotes inside them', () => {
  const text = `# http_archive(name = "fake", sha256 = "${B}", url = "https://example.invalid/commented.tar.gz")
http_archive(
    name = "real",  # a ) in a comment, and a "quote
    patch_cmds = ["echo ')' > x", "echo \\") more"],
    doc = """several lines ( with http_archive(url = "https://example.invalid/in-doc.tar.gz")
    and a 'quote'""",
    sha256 = "${A}",
    url = "https://example.invalid/real.tar.gz",
)
`;
  assert.deepEqual(parseBazelFile(text, 'WORKSPACE.bazel'), [
    { urls: ['https://example.invalid/real.tar.gz'], sha256: A, source: 'WORKSPACE.bazel:2' },
  ]);
});

test('parseBazelFile: nested calls, unpinned calls, duplicates, partial URLs and git remotes', () => {
  const text = `maybe(
    http_archive,
    name = "outer",
    sha256 = "${A}",
    urls = mirrors("https://example.invalid/outer.tar.gz") + ["https://example.invalid/outer.tar.gz"],
    inner = struct(sha256 = "${B}", url = "https://example.invalid/inner.zip"),
)
http_archive(
    name = "unpinned",
    url = "https://example.invalid/dl/" + VERSION + ".tar.gz",
    urls = ["https://example.invalid/v{}.tar.gz".format(VERSION), "https://example.invalid/latest.tar.gz"],
)
git_repository(name = "g", remote = "https://github.com/x/g.git", commit = "abc")
URLS = ["https://example.invalid/not-in-a-call.tar.gz"]
def helper(url = "https://example.invalid/default.tar.gz"):
    pass
`;
  assert.deepEqual(parseBazelFile(text, 'MODULE.bazel'), [
    { urls: ['https://example.invalid/outer.tar.gz'], sha256: A, source: 'MODULE.bazel:1' },
    { urls: ['https://example.invalid/inner.zip'], sha256: B, source: 'MODULE.bazel:6' },
    { urls: ['https://example.invalid/latest.tar.gz'], source: 'MODULE.bazel:8' },
  ]);
});

test('readWantedFiles picks the parser by file name and reports a missing file', (t) => {
  const dir = tempDir(t);
  const workspace = join(dir, 'WORKSPACE');
  writeFileSync(workspace, `http_file(sha256 = "${A}", url = "https://example.invalid/a")\n`);
  const list = join(dir, 'wanted.txt');
  writeFileSync(list, `https://example.invalid/b ${B}\n`);
  assert.deepEqual(readWantedFiles(workspace), [
    { urls: ['https://example.invalid/a'], sha256: A, source: `${workspace}:1` },
  ]);
  assert.deepEqual(readWantedFiles(list), [{ urls: ['https://example.invalid/b'], sha256: B, source: `${list}:1` }]);
  assert.throws(
    () => readWantedFiles(join(dir, 'missing.txt')),
    (e: unknown) => e instanceof AccelError && e.code === 'ACCEL_FS_NOT_FOUND',
  );
});
