"""A batch's results, from the gateway's JSON straight to protobuf wire bytes.

The first fetch of a batch converts every result. Building BatchResult objects field by field and serializing them
costs about 35 us a result in Python; writing the wire format from a plan made once per message type costs a
fraction of that, and the bytes are what the stream and the cache need anyway. The rules are `convert.fill`'s: a
key with a typed field of a fitting type goes there, JSON null on a typed field leaves it unset, and every other key
(unknown, or a value of the wrong type) goes into the message's `extra` Struct.

These are the general rules, for any input; `wire_typed` writes the usual shape of a result faster, to the same message.

Only the field kinds the result messages use are planned (strings, int64, bool, double, messages, repeated
messages, the `extra` Struct); a plan for a message with any other kind fails when it is made, at import.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from otari_batch_grpc.server.convert import EXTRA
from otari_batch_grpc.v1 import result_pb2

_LEN, _VARINT, _I64 = 2, 0, 1
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_double = struct.Struct("<d").pack

# google.protobuf.Value's fields: null_value 1, number_value 2, string_value 3, bool_value 4, struct_value 5,
# list_value 6; Struct's map entry is field 1 (key 1, value 2); ListValue's values are field 1.
_NULL, _TRUE, _FALSE = b"\x08\x00", b"\x20\x01", b"\x20\x00"

Encoder = Callable[[Any], bytes | None]  # a value's field bytes; None when the value does not fit the field


_ONE_BYTE = [bytes((i,)) for i in range(0x80)]
# Struct entries of a key and an atom (null, true, false, [], {}), ready made: results repeat the same few.
_ATOM_ENTRIES: dict[tuple[str, str], bytes] = {}
_ATOM_ENTRIES_MAX = 4096


def varint(value: int) -> bytes:
    """A non-negative integer as a protobuf varint."""
    if value < 0x80:
        return _ONE_BYTE[value]
    if value < 0x4000:  # sizes of most messages: two bytes
        return bytes((value & 0x7F | 0x80, value >> 7))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _utf8(text: str) -> bytes:
    try:
        return text.encode()
    except UnicodeEncodeError:  # a lone surrogate (JSON "\ud800"): not representable in a protobuf string
        return text.encode("utf-8", "replace")


def _tag(number: int, wire_type: int) -> bytes:
    return varint(number << 3 | wire_type)


def length_delimited(tag: bytes, payload: bytes) -> bytes:
    size = len(payload)
    return tag + (_ONE_BYTE[size] if size < 0x80 else varint(size)) + payload


def _value(value: Any) -> bytes:
    """A JSON value as google.protobuf.Value, as Struct.update would set it."""
    if value is None:
        return _NULL
    if value is True:
        return _TRUE
    if value is False:
        return _FALSE
    if isinstance(value, str):
        return length_delimited(b"\x1a", _utf8(value))
    if isinstance(value, int | float):
        return b"\x11" + _double(float(value))
    if isinstance(value, dict):
        return length_delimited(b"\x2a", struct_bytes(value))
    if isinstance(value, list | tuple):
        return length_delimited(b"\x32", b"".join(length_delimited(b"\x0a", _value(v)) for v in value))
    raise ValueError(f"not a JSON value: {type(value).__name__}")


def _entry(key: str, value: Any) -> bytes:
    """One `key: value` entry of a Struct's map, ready made when the value is an atom (null, true, false, [],
    {}): results repeat the same few keys with such values."""
    atom = (
        value is None or value is True or value is False or ((type(value) is list or type(value) is dict) and not value)
    )
    if not atom:
        return _fresh_entry(key, value)
    cached = _ATOM_ENTRIES.get((key, repr(value)))
    if cached is None:
        cached = _fresh_entry(key, value)
        if len(_ATOM_ENTRIES) < _ATOM_ENTRIES_MAX:
            _ATOM_ENTRIES[key, repr(value)] = cached
    return cached


def _fresh_entry(key: str, value: Any) -> bytes:
    return length_delimited(b"\x0a", length_delimited(b"\x0a", _utf8(key)) + length_delimited(b"\x12", _value(value)))


def struct_bytes(data: Mapping[str, Any]) -> bytes:
    """A JSON object as google.protobuf.Struct."""
    return b"".join([_entry(key, value) for key, value in data.items()])


class Plan:
    """How to write one message type from a JSON object: an encoder per typed field, and where `extra` goes."""

    def __init__(self, descriptor: Descriptor) -> None:
        self.name = descriptor.full_name
        self.fields: dict[str, Encoder] = {}
        extra = descriptor.fields_by_name.get(EXTRA)
        self._extra_tag = _tag(extra.number, _LEN) if extra is not None else None
        for field in descriptor.fields:
            if field.name != EXTRA:
                self.fields[field.name] = _encoder(field)

    def encode(self, data: Mapping[str, Any]) -> bytes:
        out: list[bytes] = []
        extra: list[bytes] = []  # the `extra` Struct's entries
        fields = self.fields
        for key, value in data.items():
            encode = fields.get(key)
            if encode is not None:
                if value is None:
                    continue
                encoded = encode(value)
                if encoded is not None:
                    out.append(encoded)
                    continue
            if value is not None:  # a null is "not set", in `extra` too
                extra.append(_entry(key, value))
        if extra and self._extra_tag is not None:
            out.append(length_delimited(self._extra_tag, b"".join(extra)))
        return b"".join(out)


def _encoder(field: FieldDescriptor) -> Encoder:
    kind, presence = field.type, field.has_presence
    if field.is_repeated:
        if kind != FieldDescriptor.TYPE_MESSAGE or field.message_type is None:
            raise NotImplementedError(f"{field.full_name}: repeated scalars are not planned")
        return _repeated_message(_tag(field.number, _LEN), Plan(field.message_type))
    if kind == FieldDescriptor.TYPE_STRING:
        return _string(_tag(field.number, _LEN), presence)
    if kind == FieldDescriptor.TYPE_INT64:
        return _int64(_tag(field.number, _VARINT), presence)
    if kind == FieldDescriptor.TYPE_BOOL:
        return _bool(_tag(field.number, _VARINT), presence)
    if kind == FieldDescriptor.TYPE_DOUBLE:
        return _number(_tag(field.number, _I64), presence)
    if kind == FieldDescriptor.TYPE_MESSAGE and field.message_type is not None:
        if field.message_type.full_name.startswith("google.protobuf."):
            raise NotImplementedError(f"{field.full_name}: {field.message_type.full_name} is not planned")
        return _message(_tag(field.number, _LEN), Plan(field.message_type))
    raise NotImplementedError(f"{field.full_name}: field type {kind} is not planned")


def _string(tag: bytes, presence: bool) -> Encoder:
    def encode(value: Any) -> bytes | None:
        if not isinstance(value, str):
            return None
        if not value and not presence:
            return b""
        return length_delimited(tag, _utf8(value))

    return encode


def _int64(tag: bytes, presence: bool) -> Encoder:
    def encode(value: Any) -> bytes | None:
        if not isinstance(value, int) or isinstance(value, bool) or not _INT64_MIN <= value <= _INT64_MAX:
            return None
        if not value and not presence:
            return b""
        return tag + varint(value if value >= 0 else value + 2**64)

    return encode


def _bool(tag: bytes, presence: bool) -> Encoder:
    def encode(value: Any) -> bytes | None:
        if not isinstance(value, bool):
            return None
        if not value and not presence:
            return b""
        return tag + (b"\x01" if value else b"\x00")

    return encode


def _number(tag: bytes, presence: bool) -> Encoder:
    def encode(value: Any) -> bytes | None:
        if not isinstance(value, int | float) or isinstance(value, bool):
            return None
        if not value and not presence:
            return b""
        return tag + _double(float(value))

    return encode


def _message(tag: bytes, plan: Plan) -> Encoder:
    def encode(value: Any) -> bytes | None:
        if not isinstance(value, dict):
            return None
        return length_delimited(tag, plan.encode(value))

    return encode


def _repeated_message(tag: bytes, plan: Plan) -> Encoder:
    def encode(value: Any) -> bytes | None:
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            return None
        return b"".join(length_delimited(tag, plan.encode(v)) for v in value)

    return encode


_COMPLETION = Plan(result_pb2.ChatCompletion.DESCRIPTOR)
_ERROR = Plan(result_pb2.ResultError.DESCRIPTOR)
_CUSTOM_ID, _COMPLETION_TAG, _ERROR_TAG = b"\x0a", b"\x12", b"\x1a"  # BatchResult fields 1, 2, 3
NEITHER = result_pb2.ResultError(
    code="unknown", message="The gateway returned neither a result nor an error for this request"
).SerializeToString()


def result(data: Mapping[str, Any]) -> bytes:
    """One `{custom_id, result, error}` item of the results document as a serialized BatchResult: the error when
    there is one, else the completion, else an error saying there was neither."""
    custom_id = str(data.get("custom_id", ""))
    head = length_delimited(_CUSTOM_ID, _utf8(custom_id)) if custom_id else b""
    completion, error = data.get("result"), data.get("error")
    if isinstance(error, dict):
        return head + length_delimited(_ERROR_TAG, _ERROR.encode(error))
    if error is not None:
        message = str(error)
        return head + length_delimited(_ERROR_TAG, length_delimited(b"\x12", _utf8(message)) if message else b"")
    if isinstance(completion, dict):
        return head + length_delimited(_COMPLETION_TAG, _COMPLETION.encode(completion))
    return head + length_delimited(_ERROR_TAG, NEITHER)
