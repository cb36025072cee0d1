"""The usual shape of a results document, decoded and written to protobuf wire bytes at C speed where it can be.

A first stream converts every result of a batch, and nearly every result has the same shape: any-llm's
ChatCompletion, with the nullable extras the gateway always sends (see GATEWAY-CONTRACT.md). For that shape:

- msgspec decodes a run of items straight into Structs made from the result messages' descriptors: the types are
  checked in C (a string where a string goes, an int64 in range, an object for a message), and a key the schema
  does not name fails the run, as does a value of the wrong type;
- an encoder per message type, generated once from the same descriptors, writes each Struct's fields with no
  per-key lookup or type test (the decoder did those).

A run that does not fit (an unknown key, a value of another type, anything unusual) is decoded as plain JSON and
written by `wire.result`, the general rules; both ways give the same message (tests/test_wire.py checks it on
arbitrary input). The declared extras are only the keys the gateway is known to send: others take the general way.
"""

from __future__ import annotations

import keyword
from collections.abc import Callable
from typing import Annotated, Any

import msgspec
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from otari_batch_grpc.server import wire
from otari_batch_grpc.server.convert import EXTRA
from otari_batch_grpc.server.results_json import checked
from otari_batch_grpc.v1 import result_pb2

# Keys the gateway sends that have no typed field (each a nullable extra of any-llm's ChatCompletion), per message.
KNOWN_EXTRAS: dict[str, tuple[str, ...]] = {
    f"{result_pb2.DESCRIPTOR.package}.{name}": keys
    for name, keys in {
        "ChatCompletion": ("moderation", "metadata"),
        "Choice": ("logprobs",),
        "ChatMessage": ("function_call", "annotations", "audio", "reasoning", "images", "extra_content"),
        "CompletionUsage": ("cache_creation_token_details",),
        "PromptTokensDetails": ("text_tokens", "image_tokens", "cache_write_tokens"),
        "CompletionTokensDetails": ("text_tokens", "image_tokens"),
    }.items()
}
_ONE_BYTE = wire._ONE_BYTE
_SIZE = "(_ONE[len(b)] if len(b) < 128 else _varint(len(b)))"  # in generated code: b's length as a varint

_INT64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
_SCALARS: dict[int, Any] = {
    FieldDescriptor.TYPE_STRING: str,
    FieldDescriptor.TYPE_INT64: _INT64,
    FieldDescriptor.TYPE_BOOL: bool,
    FieldDescriptor.TYPE_DOUBLE: float,
}
_WIRE_TYPES = {
    FieldDescriptor.TYPE_STRING: 2,
    FieldDescriptor.TYPE_MESSAGE: 2,
    FieldDescriptor.TYPE_INT64: 0,
    FieldDescriptor.TYPE_BOOL: 0,
    FieldDescriptor.TYPE_DOUBLE: 1,
}


class _Schema:
    """A Struct type and the source of an encoder for each result message type, made from the descriptors."""

    def __init__(self) -> None:
        self.structs: dict[str, type[msgspec.Struct]] = {}
        self.source: list[str] = []  # the encoders' code, one function per message type

    def struct(self, descriptor: Descriptor) -> type[msgspec.Struct]:
        known = self.structs.get(descriptor.full_name)
        if known is not None:
            return known
        fields: list[tuple[str, Any, Any]] = []
        for field in descriptor.fields:
            if field.name == EXTRA:
                continue
            if field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type is not None:
                kind: Any = self.struct(field.message_type)
            elif field.type in _SCALARS:
                kind = _SCALARS[field.type]
            else:
                raise NotImplementedError(f"{field.full_name}: field type {field.type} is not in the schema")
            kind = list[kind] if field.is_repeated else kind
            fields.append((_attribute(field.name), kind | None, msgspec.field(default=None, name=field.name)))
        for key in KNOWN_EXTRAS.get(descriptor.full_name, ()):
            fields.append((_attribute(key), Any, msgspec.field(default=msgspec.UNSET, name=key)))
        struct = msgspec.defstruct(f"{descriptor.name}Struct", fields, forbid_unknown_fields=True)
        self.structs[descriptor.full_name] = struct
        self.source.append(_encoder_source(descriptor))
        return struct

    def encoders(self) -> dict[str, Callable[[Any], bytes]]:
        """Each message type's encoder, by full name."""
        names: dict[str, Any] = {"_ONE": _ONE_BYTE, "_varint": wire.varint, "_varint64": _varint64}
        names.update(_double=wire._double, _entry=wire._entry, UNSET=msgspec.UNSET)
        exec("\n\n".join(self.source), names)  # code generated from our own descriptors
        return {name: names[_function(name)] for name in self.structs}


def _encoder_source(descriptor: Descriptor) -> str:
    """`def _write_<message>(s) -> bytes`: each typed field as `wire.Plan` writes it (zero and empty left out unless
    the field has presence), then the declared extras that came with a value (a null is not set) as `extra`."""
    lines = [f"def {_function(descriptor.full_name)}(s):", "    out = []", "    put = out.append"]
    for field in descriptor.fields:
        if field.name == EXTRA:
            continue
        tag = wire.varint(field.number << 3 | _WIRE_TYPES[field.type])
        lines.append(f"    v = s.{_attribute(field.name)}")
        sent = "v is not None" if field.has_presence else "v"
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            assert field.message_type is not None  # the schema has a Struct for it
            write = _function(field.message_type.full_name)
            if field.is_repeated:
                lines += ["    for m in v or ():", f"        b = {write}(m)", f"        put({tag!r} + {_SIZE} + b)"]
            else:
                lines += ["    if v is not None:", f"        b = {write}(v)", f"        put({tag!r} + {_SIZE} + b)"]
        elif field.type == FieldDescriptor.TYPE_STRING:
            lines += [f"    if {sent}:", "        b = v.encode()", f"        put({tag!r} + {_SIZE} + b)"]
        elif field.type == FieldDescriptor.TYPE_INT64:
            lines += [f"    if {sent}:", f"        put({tag!r} + (_ONE[v] if 0 <= v < 128 else _varint64(v)))"]
        elif field.type == FieldDescriptor.TYPE_BOOL:
            lines += [f"    if {sent}:", f"        put({tag!r} + (b'\\x01' if v else b'\\x00'))"]
        else:  # double
            lines += [f"    if {sent}:", f"        put({tag!r} + _double(v))"]
    extras = KNOWN_EXTRAS.get(descriptor.full_name, ())
    extra = descriptor.fields_by_name.get(EXTRA)
    if extras and extra is None:
        raise NotImplementedError(f"{descriptor.full_name}: extras declared for a message without `{EXTRA}`")
    if extras and extra is not None:
        lines.append("    extra = []")
        for key in extras:
            attribute = _attribute(key)
            lines += [f"    v = s.{attribute}", "    if v is not None and v is not UNSET:"]
            lines += [f"        extra.append(_entry({key!r}, v))"]
        tag = wire.varint(extra.number << 3 | 2)
        lines += ["    if extra:", "        b = b''.join(extra)", f"        put({tag!r} + {_SIZE} + b)"]
    lines.append("    return b''.join(out)")
    return "\n".join(lines)


def _function(full_name: str) -> str:
    return "_write_" + full_name.replace(".", "_")


def _attribute(key: str) -> str:
    """A JSON key as a Struct attribute: itself, or with `_` after a Python keyword."""
    return f"{key}_" if keyword.iskeyword(key) else key


def _size(payload: bytes) -> bytes:
    size = len(payload)
    return _ONE_BYTE[size] if size < 0x80 else wire.varint(size)


def _varint64(value: int) -> bytes:
    return wire.varint(value if value >= 0 else value + 2**64)


_SCHEMA = _Schema()
_Completion = _SCHEMA.struct(result_pb2.ChatCompletion.DESCRIPTOR)
_Error = _SCHEMA.struct(result_pb2.ResultError.DESCRIPTOR)
_ENCODERS = _SCHEMA.encoders()
_write_completion = _ENCODERS[result_pb2.ChatCompletion.DESCRIPTOR.full_name]
_write_error = _ENCODERS[result_pb2.ResultError.DESCRIPTOR.full_name]


class _Item(msgspec.Struct, forbid_unknown_fields=True):
    custom_id: str
    result: _Completion | None = None  # type: ignore[valid-type]
    error: _Error | str | None = None  # type: ignore[valid-type]


_decode_typed = msgspec.json.Decoder(list[_Item]).decode
_decode_plain = msgspec.json.Decoder().decode
_CUSTOM_ID_TAG, _COMPLETION_TAG, _ERROR_TAG, _MESSAGE_TAG = b"\x0a", b"\x12", b"\x1a", b"\x12"


def _result(item: _Item) -> bytes:
    """The message `wire.result` writes: the error when there is one, else the completion, else an error saying
    neither."""
    custom_id = item.custom_id.encode()
    head = _CUSTOM_ID_TAG + _size(custom_id) + custom_id if custom_id else b""
    error = item.error
    if isinstance(error, str):
        message = error.encode()
        body = _MESSAGE_TAG + _size(message) + message if message else b""
    elif error is not None:
        body = _write_error(error)
    elif item.result is not None:
        body = _write_completion(item.result)
        return head + _COMPLETION_TAG + _size(body) + body
    else:
        body = wire.NEITHER
    return head + _ERROR_TAG + _size(body) + body


def results(run: bytes) -> list[bytes]:
    """Each item of `run` (a JSON array of `{custom_id, result, error}` items) as a serialized BatchResult. Raises
    msgspec.DecodeError when `run` is not JSON, UnicodeDecodeError when it is not UTF-8, ResultsDocumentError when
    it is not such a list."""
    try:
        items = _decode_typed(run)
        return [_result(item) for item in items]
    except msgspec.ValidationError:
        pass  # JSON, of another shape: the general way
    except UnicodeEncodeError:
        pass  # a lone surrogate (JSON "\ud800"): the general way replaces it
    return [wire.result(item) for item in checked(_decode_plain(run))]
