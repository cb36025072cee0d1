// @ts-check
// Puts the contract into the package: the .proto files the client loads at run time (contract/protos, from the
// repository's protos/) and the TypeScript types made from them (contract/types, from generated/node). Run before
// the tests and by `npm pack`, so the package works outside this repository; contract/ is not committed, its
// sources are.
import { cpSync, rmSync } from 'node:fs';

const pkg = new URL('../', import.meta.url);
rmSync(new URL('contract', pkg), { recursive: true, force: true });
cpSync(new URL('../../protos/otari', pkg), new URL('contract/protos/otari', pkg), { recursive: true });
cpSync(new URL('../../generated/node', pkg), new URL('contract/types', pkg), { recursive: true });
