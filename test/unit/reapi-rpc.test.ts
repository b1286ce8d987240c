import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createLog } from '../../src/core/log.ts';
import { asciiMessage, Code, RpcError, toServiceError } from '../../src/reapi/rpc.ts';

const log = createLog('quiet', () => {});

test('gRPC status messages are ASCII: typographic marks as their look-alikes, anything else as \\uXXXX', () => {
  assert.equal(
    asciiMessage('argument -fplugin=x.so is refused: it is not on the farm’s list — “known-safe” options…'),
    'argument -fplugin=x.so is refused: it is not on the farm\'s list - "known-safe" options...',
  );
  assert.equal(asciiMessage('input café.h → ünïcode'), 'input caf\\u00e9.h -> \\u00fcn\\u00efcode');
  assert.equal(asciiMessage('a\u0000b\u0007c'), 'a b c');
  assert.match(asciiMessage('emoji 😀 here'), /^[\x20-\x7e]*$/);
  // Every error a service sends goes through it.
  const sent = toServiceError(new RpcError(Code.PERMISSION_DENIED, 'the farm’s allowlist'), { log, name: 'test' });
  assert.equal(sent.details, "the farm's allowlist");
  assert.equal(sent.message, "the farm's allowlist");
});
