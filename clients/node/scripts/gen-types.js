// Writes (or, with --check, compares) the TypeScript types of the contract's messages, made by @grpc/proto-loader's
// own generator with the loader options src/client.js uses (LOADER_OPTIONS there; keep the two in step).
//     node scripts/gen-types.js [--check] OUT_DIR        (run from clients/node; npm run generate-types)
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, cpSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';

const args = process.argv.slice(2);
const check = args[0] === '--check';
const out = check ? args[1] : args[0];
if (!out) throw new Error('usage: gen-types.js [--check] OUT_DIR');

const tmp = mkdtempSync(join(tmpdir(), 'otari-types-'));
try {
  execFileSync('node_modules/.bin/proto-loader-gen-types', [
    '--longs=Number', '--enums=String', '--defaults', '--oneofs', '--includeComments',
    '--grpcLib=@grpc/grpc-js', '-I', '../../protos', '-O', tmp, 'otari/batch/v1/batch_service.proto',
  ], { stdio: 'inherit' });
  if (!check) {
    rmSync(out, { recursive: true, force: true });
    cpSync(tmp, out, { recursive: true });
  } else {
    const files = (/** @type {string} */ dir) => readdirSync(dir, { recursive: true })
      .map(String).filter((f) => statSync(join(dir, f)).isFile()).sort();
    const want = files(tmp);
    const have = (() => { try { return files(out); } catch { return []; } })();
    const stale = [...new Set([...want, ...have])].filter((f) => !want.includes(f) || !have.includes(f)
      || readFileSync(join(tmp, f), 'utf8') !== readFileSync(join(out, f), 'utf8'));
    if (stale.length) {
      console.error(`${out} is stale (${stale.slice(0, 5).join(', ')}): run 'npm run generate-types' and commit it`);
      process.exit(1);
    }
    console.log(`${relative('.', out)} is fresh`);
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
