"""Gateway JSON <-> proto messages: the only module that knows both shapes.

JSON -> proto is lossless by construction: `fill` walks the message's descriptor; a key with a typed field of a
matching type lands there, and every other key (unknown, or of an unexpected type) lands in the message's
`extra` Struct. JSON null means "not set" (in `extra` too, which holds values only, and is unset when empty).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, cast

import msgspec
from google.protobuf import struct_pb2, timestamp_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from otari_batch_grpc.v1 import batch_pb2, batch_service_pb2

JSON = dict[str, Any]

_encode_json = msgspec.json.Encoder().encode

EXTRA = "extra"
DEFAULT_COMPLETION_WINDOW = "24h"
TERMINAL_STATUSES = frozenset(
    {
        batch_pb2.BATCH_STATUS_COMPLETED,
        batch_pb2.BATCH_STATUS_FAILED,
        batch_pb2.BATCH_STATUS_EXPIRED,
        batch_pb2.BATCH_STATUS_CANCELLED,
    }
)

_INT_TYPES = (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_UINT64)
_FLOAT_TYPES = (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT)


# What the gateway and this service stamp into a batch's metadata upstream. Batch.metadata is what the caller set;
# the stamps are typed fields of their own.
GATEWAY_OWNER_KEY = "otari_user_id"  # the gateway's: the user the batch belongs to (Batch.user)
REQUEST_ID_KEY = "otari_request_id"  # this service's: "<request_id>/<request digest>" (Batch.request_id)
LEGACY_DIGEST_KEY = "otari_request_digest"  # this service's digest, stamped apart before it joined the request_id
STAMPED_KEYS = frozenset({GATEWAY_OWNER_KEY, REQUEST_ID_KEY, LEGACY_DIGEST_KEY})


def request_stamp(request_id: str, digest: str) -> dict[str, str]:
    """The stamp a create with a request_id leaves in the batch's metadata: which request made it."""
    return {REQUEST_ID_KEY: f"{request_id}/{digest}"}


def stamped_request(metadata: Mapping[str, Any]) -> tuple[str, str | None]:
    """The request_id and request digest a batch's metadata was stamped with ("" when none; the digest None for
    a batch stamped before digests were)."""
    stamp = metadata.get(REQUEST_ID_KEY)
    if not isinstance(stamp, str):
        return "", None
    request_id, _, digest = stamp.partition("/")
    legacy = metadata.get(LEGACY_DIGEST_KEY)
    return request_id, digest or (legacy if isinstance(legacy, str) else None)


def batch_from_json(data: Mapping[str, Any]) -> batch_pb2.Batch:
    """A gateway Batch object as a Batch message: the stamps out of the metadata, into their fields."""
    normalized = dict(data)
    metadata = normalized.get("metadata")
    if isinstance(metadata, dict) and STAMPED_KEYS & metadata.keys():
        normalized["metadata"] = {k: v for k, v in metadata.items() if k not in STAMPED_KEYS}
        normalized["user"] = metadata.get(GATEWAY_OWNER_KEY)
        normalized["request_id"] = stamped_request(metadata)[0] or None
    errors = normalized.get("errors")
    if isinstance(errors, dict) and isinstance(errors.get("data"), list) and set(errors) <= {"object", "data"}:
        normalized["errors"] = errors["data"]
    if isinstance(normalized.get("status"), str):
        normalized["upstream_status"] = normalized["status"]
    batch = batch_pb2.Batch()
    fill(batch, normalized)
    return batch


def status_name(status: int) -> str:
    """`BATCH_STATUS_IN_PROGRESS` -> `in_progress`, the gateway's spelling."""
    return batch_pb2.BatchStatus.Name(status).removeprefix("BATCH_STATUS_").lower()  # type: ignore[arg-type]


def create_body(request: batch_service_pb2.CreateBatchRequest, *, stamp: Mapping[str, str] | None = None) -> bytes:
    """The gateway's POST /v1/batches body for a (validated) CreateBatchRequest, as JSON bytes, with `stamp`
    added to its metadata. A body_json goes in as the caller wrote it (validated as one JSON object); a Struct body
    is converted. Megabytes for 10,000 requests: callers run it off the event loop."""
    head: JSON = {"completion_window": request.completion_window or DEFAULT_COMPLETION_WINDOW}
    metadata = {**request.metadata, **(stamp or {})}
    if metadata:
        head["metadata"] = metadata
    if request.user:
        head["user"] = request.user
    items = b",".join(
        b'{"custom_id":%s,"body":%s}' % (_encode_json(item.custom_id), _request_body(item)) for item in request.requests
    )
    # {"model": ..., "requests": [...], <head's members>}
    return b'{"model":%s,"requests":[%s],%s' % (_encode_json(request.model), items, _encode_json(head)[1:])


def _request_body(item: batch_service_pb2.BatchRequestItem) -> bytes:
    if text := item.body_json:  # validated: a body_json is never empty
        return text.encode()
    return _encode_json(struct_to_python(item.body))


_NUMBER, _STRING, _BOOL, _STRUCT, _LIST = (
    struct_pb2.Value.DESCRIPTOR.fields_by_name[name].number
    for name in ("number_value", "string_value", "bool_value", "struct_value", "list_value")
)


def struct_to_python(struct: struct_pb2.Struct) -> JSON:
    """A Struct as plain JSON-ready Python. Struct keeps every number as a double; whole numbers come back as
    ints, since providers reject `"max_tokens": 100.0`."""
    return {key: _value_to_python(value) for key, value in struct.fields.items()}


def _value_to_python(value: struct_pb2.Value) -> Any:
    # ListFields: the one field the `kind` oneof holds, in one call (WhichOneof plus a getattr costs more).
    held_fields = value.ListFields()
    if not held_fields:  # a Value with no kind set: as null
        return None
    ((field, held),) = held_fields
    number = field.number
    if number == _NUMBER:
        if math.isfinite(held) and held.is_integer() and abs(held) < 2**53:
            return int(held)
        return held
    if number in (_STRING, _BOOL):
        return held
    if number == _STRUCT:
        return {key: _value_to_python(v) for key, v in held.fields.items()}
    if number == _LIST:
        return [_value_to_python(v) for v in held.values]
    return None


def fill(message: Message, data: Mapping[str, Any]) -> None:
    """Set `message` from a JSON object; keys without a typed field of the right type go to `extra`."""
    descriptor = message.DESCRIPTOR
    extra: JSON = {}
    for key, value in data.items():
        field = cast(FieldDescriptor | None, descriptor.fields_by_name.get(key))
        if value is not None and (field is None or key == EXTRA or not _set(message, field, value)):
            extra[key] = value  # (a null is "not set", in `extra` too: it holds values only)
    if extra and EXTRA in descriptor.fields_by_name:
        getattr(message, EXTRA).update(extra)


def _set(message: Message, field: FieldDescriptor, value: Any) -> bool:
    """Set one field; False when the JSON value does not fit its type (the caller keeps it in `extra`)."""
    name = field.name
    if _is_map(field):
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            return False
        getattr(message, name).update(value)
        return True
    if field.is_repeated:
        if not isinstance(value, list):
            return False
        target = getattr(message, name)
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            if not all(isinstance(v, dict) for v in value):
                return False
            for item in value:
                fill(target.add(), item)
            return True
        if not all(_scalar_fits(field, v) for v in value):
            return False
        target.extend(value)
        return True
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return _set_message(getattr(message, name), value)
    if field.type == FieldDescriptor.TYPE_ENUM:
        if not isinstance(value, str):
            return False
        assert field.enum_type is not None
        enum_value = field.enum_type.values_by_name.get(f"{_enum_prefix(field)}_{value.upper()}")
        if enum_value is not None:
            setattr(message, name, enum_value.number)
        return True  # an unknown value leaves the enum UNSPECIFIED; the raw string is kept by the caller
    if not _scalar_fits(field, value):
        return False
    setattr(message, name, value)
    return True


def _set_message(target: Message, value: Any) -> bool:
    if isinstance(target, timestamp_pb2.Timestamp):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        target.FromNanoseconds(int(value * 1_000_000_000))
        return True
    if isinstance(target, struct_pb2.Struct):
        if not isinstance(value, dict):
            return False
        target.update(value)
        return True
    if not isinstance(value, dict):
        return False
    target.SetInParent()
    fill(target, value)
    return True


def _scalar_fits(field: FieldDescriptor, value: Any) -> bool:
    if field.type == FieldDescriptor.TYPE_STRING:
        return isinstance(value, str)
    if field.type == FieldDescriptor.TYPE_BOOL:
        return isinstance(value, bool)
    if field.type in _INT_TYPES:
        return isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63
    if field.type in _FLOAT_TYPES:
        return isinstance(value, int | float) and not isinstance(value, bool)
    return False


def _is_map(field: FieldDescriptor) -> bool:
    return (
        field.type == FieldDescriptor.TYPE_MESSAGE
        and field.message_type is not None
        and field.message_type.GetOptions().map_entry
    )


def _enum_prefix(field: FieldDescriptor) -> str:
    """BatchStatus -> BATCH_STATUS."""
    assert field.enum_type is not None
    name = field.enum_type.name
    return "".join(f"_{c}" if c.isupper() and i else c for i, c in enumerate(name)).upper()
