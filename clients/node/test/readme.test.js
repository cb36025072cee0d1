// @ts-check
// The Node example of the repository's README.md ("Other languages"), run as written against a real server, from a
// project outside this repository that installed the packed client: what a user of the package gets.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startServer } from './server.js';

const run = promisify(execFile);
const PACKAGE_DIR = fileURLToPath(new URL('..', import.meta.url));
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** A scratch project outside the checkout, with the packed client installed (npm pack runs bundle-contract). */
let project = '';
before(async () => {
  project = mkdtempSync(join(tmpdir(), 'otari-node-user-'));
  const { stdout } = await run(npm, ['pack', '--silent', '--pack-destination', project], { cwd: PACKAGE_DIR });
  const tarball = join(project, stdout.trim().split('\n').pop() ?? '');
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'user', private: true, type: 'module' }));
  await run(npm, ['install', '--no-audit', '--no-fund', '--silent', tarball], { cwd: project, timeout: 240_000 });
  server = await startServer();
}, { timeout: 300_000 });
after(async () => {
  await server?.stop();
  if (project) rmSync(project, { recursive: true, force: true });
});

test('the packed package carries the contract it loads', () => {
  const installed = join(project, 'node_modules/@otari/batch-grpc');
  assert.deepEqual(readdirSync(join(installed, 'contract/protos/otari/batch/v1')).sort(),
    ['batch.proto', 'batch_service.proto', 'result.proto', 'watch.proto', 'webhook_service.proto']);
  assert.ok(readdirSync(join(installed, 'contract/types')).includes('batch_service.ts'));
});

/** The README's Node example ("Other languages"): its first ```js block. */
function readmeExample() {
  const readme = readFileSync(join(PACKAGE_DIR, '../../README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Other languages'));
  const example = /```js\n([\s\S]*?)```/.exec(section)?.[1];
  assert.ok(example, 'no ```js block in the README\'s "Other languages" section');
  return example.replace(/^ {2}/gm, '');
}

test('the README example type-checks with tsc --strict against the declarations the package ships', async () => {
  writeFileSync(join(project, 'example.ts'), readmeExample());
  writeFileSync(join(project, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      strict: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', noEmit: true,
      typeRoots: [join(PACKAGE_DIR, 'node_modules/@types')], types: ['node'],
    },
    files: ['example.ts'],
  }));
  const tsc = join(PACKAGE_DIR, 'node_modules/typescript/bin/tsc');
  const checked = await run(process.execPath, [tsc, '-p', project], { cwd: project, timeout: 120_000 })
    .catch((/** @type {{stdout: string}} */ failed) => failed);
  assert.equal(checked.stdout, '', 'tsc --strict found errors');
});

test('the README example runs in a project of its own', async () => {
  const example = readmeExample();
  const code = example.replace("'127.0.0.1:50051'", `'${server.target}'`);
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', code], { cwd: project, timeout: 30_000 });
  const lines = stdout.trim().split('\n');
  assert.equal(lines[0], 'BATCH_EVENT_KIND_SNAPSHOT BATCH_STATUS_VALIDATING');
  assert.ok(lines.includes('BATCH_EVENT_KIND_CHANGE BATCH_STATUS_COMPLETED'), stdout);
  assert.ok(lines.includes('q1 Echo: Hi'), stdout);
  assert.equal(lines[lines.length - 1], 'INVALID_ARGUMENT INVALID_REQUEST requests[0].bodyJson null');
});
