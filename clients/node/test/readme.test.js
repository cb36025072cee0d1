// @ts-check
// The Node example of the repository's README.md ("Other languages"), run as written against a real server.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { startServer } from './server.js';

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
before(async () => { server = await startServer(); });
after(async () => { await server?.stop(); });

test('the README example runs', async () => {
  const readme = readFileSync(fileURLToPath(new URL('../../../README.md', import.meta.url)), 'utf8');
  const section = readme.slice(readme.indexOf('## Other languages'));
  const example = /```js\n([\s\S]*?)```/.exec(section)?.[1];
  assert.ok(example, 'no ```js block in the README\'s "Other languages" section');
  const code = example
    .replace("'@otari/batch-grpc'", `'${pathToFileURL(fileURLToPath(new URL('../src/index.js', import.meta.url)))}'`)
    .replace("'127.0.0.1:50051'", `'${server.target}'`);
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', code], { timeout: 30_000 });
  const lines = stdout.trim().split('\n');
  assert.equal(lines[0], 'BATCH_EVENT_KIND_SNAPSHOT BATCH_STATUS_VALIDATING');
  assert.ok(lines.includes('BATCH_EVENT_KIND_CHANGE BATCH_STATUS_COMPLETED'), stdout);
  assert.ok(lines.includes('q1 Echo: Hi'), stdout);
  assert.equal(lines[lines.length - 1], 'INVALID_ARGUMENT INVALID_REQUEST requests[0].body_json null');
});
