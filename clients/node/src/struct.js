// @ts-check
// google.protobuf.Struct / Timestamp as proto-loader shapes them, to and from plain JavaScript.

/** @typedef {import('../contract/types/google/protobuf/Struct.js').Struct} Struct */
/** @typedef {import('../contract/types/google/protobuf/Struct.js').Struct__Output} StructOutput */
/** @typedef {import('../contract/types/google/protobuf/Value.js').Value} Value */
/** @typedef {import('../contract/types/google/protobuf/Value.js').Value__Output} ValueOutput */
/** @typedef {import('../contract/types/google/protobuf/Timestamp.js').Timestamp__Output} Timestamp */
/** @typedef {import('./json.js').JSONValue} JSONValue */

/**
 * A plain object (a chat-completion body, say) as a google.protobuf.Struct.
 * @param {Record<string, JSONValue>} object
 * @returns {Struct}
 */
export function toStruct(object) {
  /** @type {Record<string, Value>} */
  const fields = {};
  for (const [key, value] of Object.entries(object)) {
    if (value !== undefined) fields[key] = toValue(value);
  }
  return { fields };
}

/**
 * @param {JSONValue} value
 * @returns {Value}
 */
function toValue(value) {
  if (value === null) return { nullValue: 'NULL_VALUE' };
  if (typeof value === 'number') return { numberValue: value };
  if (typeof value === 'string') return { stringValue: value };
  if (typeof value === 'boolean') return { boolValue: value };
  if (Array.isArray(value)) return { listValue: { values: value.map(toValue) } };
  if (typeof value === 'object') return { structValue: toStruct(value) };
  throw new TypeError(`not a JSON value: ${typeof value}`);
}

/**
 * A google.protobuf.Struct (as the client returns it: `extra` fields, for example) as a plain object.
 * @param {StructOutput | null | undefined} struct
 * @returns {Record<string, JSONValue>}
 */
export function fromStruct(struct) {
  /** @type {Record<string, JSONValue>} */
  const out = {};
  for (const [key, value] of Object.entries(struct?.fields ?? {})) out[key] = fromValue(value);
  return out;
}

/**
 * @param {ValueOutput} value
 * @returns {JSONValue}
 */
function fromValue(value) {
  switch (value.kind) {
    case 'numberValue': return value.numberValue ?? 0;
    case 'stringValue': return value.stringValue ?? '';
    case 'boolValue': return value.boolValue ?? false;
    case 'structValue': return fromStruct(value.structValue);
    case 'listValue': return (value.listValue?.values ?? []).map(fromValue);
    default: return null;
  }
}

/**
 * A google.protobuf.Timestamp as a Date; null when unset.
 * @param {Timestamp | null | undefined} timestamp
 * @returns {Date | null}
 */
export function toDate(timestamp) {
  if (!timestamp) return null;
  return new Date(Number(timestamp.seconds) * 1000 + Math.floor(timestamp.nanos / 1e6));
}
