// A JSON value, as a chat-completion body and the contract's `extra` Structs hold.
export type JSONValue = null | boolean | number | string | JSONValue[] | { [key: string]: JSONValue };
