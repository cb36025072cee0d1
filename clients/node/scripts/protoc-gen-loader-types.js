#!/usr/bin/env node
// @ts-check
// A protoc plugin, for `buf generate` (see buf.gen.yaml), writing the TypeScript types of the contract's messages
// with @grpc/proto-loader's own generator (proto-loader-gen-types) and the loader's options (LOADER_OPTIONS in
// src/client.js: keep the two in step). That generator reads .proto sources, not descriptors, so the plugin hands it
// the request's files from the root its option names (`opt: protos`), and answers with what it wrote.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs/minimal.js';

const GENERATOR = fileURLToPath(new URL('../node_modules/.bin/proto-loader-gen-types', import.meta.url));

// google.protobuf.compiler.CodeGeneratorRequest: file_to_generate = 1, parameter = 2 (the rest is not read).
const request = protobuf.Reader.create(readFileSync(0));
/** @type {string[]} */
const files = [];
let root = '';
while (request.pos < request.len) {
  const tag = request.uint32();
  if (tag >>> 3 === 1) files.push(request.string());
  else if (tag >>> 3 === 2) root = request.string();
  else request.skipType(tag & 7);
}

// CodeGeneratorResponse: supported_features = 2 (1: proto3 optional), file = 15 {name = 1, content = 15}.
const response = protobuf.Writer.create().uint32((2 << 3) | 0).uint64(1);
const tmp = mkdtempSync(join(tmpdir(), 'otari-types-'));
try {
  execFileSync(GENERATOR, [
    '--longs=Number', '--enums=String', '--defaults', '--oneofs', '--includeComments',
    '--grpcLib=@grpc/grpc-js', '-I', root || '.', '-O', tmp, ...files,
  ], { stdio: ['ignore', 'ignore', 'inherit'] });
  const written = readdirSync(tmp, { recursive: true }).map(String).filter((f) => statSync(join(tmp, f)).isFile());
  for (const name of written.sort()) {
    response.uint32((15 << 3) | 2).fork()
      .uint32((1 << 3) | 2).string(name)
      .uint32((15 << 3) | 2).string(readFileSync(join(tmp, name), 'utf8'))
      .ldelim();
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
process.stdout.write(response.finish());
