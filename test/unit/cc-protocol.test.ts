import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeRequest, encodeRequest, FrameReader, frame, MAGIC } from '../../src/cc/protocol.ts';

test('a compile request survives encoding: argv with spaces and empty strings, env values with = and newlines', () => {
  const request = {
    kind: 'compile' as const,
    secret: 'abc',
    pid: 42,
    umask: 0o022,
    cwd: '/work/a dir',
    argv: ['gcc', '-DX="a b"', '', '-c', 'x.c'],
    env: { PATH: '/usr/bin', WEIRD: 'a=b\nc', EMPTY: '' },
  };
  const wire = encodeRequest(request);
  assert.equal(wire.readUInt32LE(0), wire.length - 4);
  assert.deepEqual(decodeRequest(wire.subarray(4)), request);
  assert.deepEqual(decodeRequest(encodeRequest({ kind: 'status', secret: 's' }).subarray(4)), {
    kind: 'status',
    secret: 's',
  });
});

test('bad requests are refused with a protocol error, never half-read', () => {
  const body = (s: string) => Buffer.from(s);
  for (const [bytes, why] of [
    [body('HTTP/1.1\0x\0status\0'), /not an ACCEL-CC\/1 request/],
    [body(`${MAGIC}\0s\0launch\0`), /unknown request kind 'launch'/],
    [body(`${MAGIC}\0s\0compile\x001\x0018\x00/\x003\x00gcc\0`), /truncated/],
    [body(`${MAGIC}\0s\0compile\x001\x00/\x00/\x001\x00gcc\x000\0`), /umask is not a number/],
    [body(`${MAGIC}\0s\0compile\x001\x0018\x00/\x00lots\0`), /count is not a number/],
    [body(`${MAGIC}\0s\0status`), /does not end with NUL/],
  ] as const) {
    assert.throws(
      () => decodeRequest(bytes),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, 'ACCEL_CC_DAEMON_PROTOCOL');
        assert.match(err.message, why);
        return true;
      },
    );
  }
});

test('frames split across chunks at any byte come out whole and in order', () => {
  const wire = Buffer.concat([frame('k'), frame('o', 'out'), frame('e', Buffer.alloc(70_000, 7)), frame('x', '1')]);
  for (const size of [1, 3, 5, 4096, wire.length]) {
    const reader = new FrameReader();
    const got: string[] = [];
    for (let i = 0; i < wire.length; i += size)
      for (const f of reader.push(wire.subarray(i, i + size))) got.push(`${f.type}:${f.payload.length}`);
    assert.deepEqual(got, ['k:0', 'o:3', 'e:70000', 'x:1'], `chunks of ${size}`);
  }
  // A whole frame in one chunk with more chunks queued behind it (a partial head, then the rest).
  const reader = new FrameReader();
  const x = frame('x', '0');
  assert.deepEqual(reader.push(Buffer.concat([frame('o', 'ab'), x.subarray(0, 2)])).length, 1);
  const last = reader.push(x.subarray(2));
  assert.equal(last.length, 1);
  assert.equal(last[0]?.payload.toString(), '0');
});
