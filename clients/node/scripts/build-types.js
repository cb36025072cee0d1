// @ts-check
// The package's TypeScript declarations (types/), made from the JSDoc of src/ by tsc (tsconfig.types.json), with
// the contract's types beside them and src's hand-written .d.ts copied over. Run by `npm pack` (after
// bundle-contract.js) and the tests; types/ is not committed, its sources are. The contract's types, written by
// proto-loader-gen-types with extensionless relative imports, get `.js` on each, as an ES module's declarations
// need under TypeScript's node16/nodenext resolution.
import { execFileSync } from 'node:child_process';
import { cpSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const pkg = new URL('../', import.meta.url);
rmSync(new URL('types', pkg), { recursive: true, force: true });
const tsc = fileURLToPath(new URL('node_modules/typescript/bin/tsc', pkg));
execFileSync(process.execPath, [tsc, '-p', 'tsconfig.types.json'], { cwd: pkg, stdio: 'inherit' });
for (const name of readdirSync(new URL('src', pkg)).filter((n) => n.endsWith('.d.ts'))) {
  cpSync(new URL(`src/${name}`, pkg), new URL(`types/src/${name}`, pkg));
}

const RELATIVE = /(from |import\()'(\.{1,2}\/[^']+?)(?<!\.js)'/g;
for (const entry of readdirSync(new URL('types/contract', pkg), { recursive: true, withFileTypes: true })) {
  if (!entry.isFile() || !entry.name.endsWith('.d.ts')) continue;
  const file = `${entry.parentPath ?? entry.path}/${entry.name}`;
  writeFileSync(file, readFileSync(file, 'utf8').replace(RELATIVE, "$1'$2.js'"));
}
