// @ts-check
export { BatchClient, LOADER_OPTIONS } from './client.js';
export { BatchError } from './errors.js';
export { toStruct, fromStruct, toDate } from './struct.js';
export { status } from '@grpc/grpc-js';
