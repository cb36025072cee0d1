"""Gateway JSON <-> proto messages: the only module that knows both shapes.

JSON -> proto is lossless by construction: `fill` walks the message's descriptor; a key with a typed field of a
matching type lands there, and every other key (unknown, or of an unexpected type) lands in the message's
`extra` Struct. JSON null means "not set" (in `extra` too, which holds values only, and is unset when empty).
`fill` knows no message by name: a field of any kind added to the contract is filled once it is generated.
"""

from __future__ import annotations

import asyncio
import functools
import math
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
from google.protobuf import struct_pb2, timestamp_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from otari_batch_grpc.server.util.stamps import GATEWAY_OWNER_KEY, STAMPED_KEYS, stamped_request
from otari_batch_grpc.v1 import batch_pb2, batch_service_pb2, result_pb2

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

# The values each integer type holds: [low, high).
_INT_RANGES = {
    **dict.fromkeys((FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SFIXED32),
                    (-(2**31), 2**31)),
    **dict.fromkeys((FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32), (0, 2**32)),
    **dict.fromkeys((FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_SFIXED64),
                    (-(2**63), 2**63)),
    **dict.fromkeys((FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64), (0, 2**64)),
}  # fmt: skip
_FLOAT_TYPES = (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT)


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


NEITHER = "The gateway returned neither a result nor an error for this request"


def result_from_json(data: Mapping[str, Any]) -> result_pb2.BatchResult:
    """One `{custom_id, result, error}` item of the gateway's results document as a BatchResult: the error when
    there is one (an object; any other value as its message), else the completion, else an error saying there was
    neither. A lone surrogate (JSON `"\\ud800"`), which a protobuf string cannot hold, is replaced by `?`."""
    try:
        return _result(data)
    except UnicodeEncodeError:
        return _result(_without_surrogates(data))


def _result(data: Mapping[str, Any]) -> result_pb2.BatchResult:
    result = result_pb2.BatchResult(custom_id=str(data.get("custom_id", "")), attempts=1)
    completion, error = data.get("result"), data.get("error")
    if isinstance(error, dict):
        result.error.SetInParent()
        fill(result.error, error)
    elif error is not None:
        result.error.SetInParent()
        result.error.message = str(error)
    elif isinstance(completion, dict):
        result.completion.SetInParent()
        fill(result.completion, completion)
    else:
        result.error.code, result.error.message = "unknown", NEITHER
    return result


def _without_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode()
    if isinstance(value, dict):
        return {_without_surrogates(k): _without_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_surrogates(v) for v in value]
    return value


def provider_of_model(model: str) -> str:
    """The provider of a "provider:model" (or "provider/model") name."""
    for sep in (":", "/"):
        provider, found, _ = model.partition(sep)
        if found:
            return provider
    return model


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


# A create body for more requests than this is built in a thread.
_BODY_ON_LOOP_REQUESTS = 500


async def encoded_create(
    request: batch_service_pb2.CreateBatchRequest, *, stamp: Mapping[str, str] | None = None
) -> bytes:
    """`create_body`, made off the event loop when it is megabytes of JSON."""
    if len(request.requests) > _BODY_ON_LOOP_REQUESTS:
        return await asyncio.to_thread(create_body, request, stamp=stamp)
    return create_body(request, stamp=stamp)


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
    plan = _plan(message.DESCRIPTOR)
    exact, setters = plan.exact, plan.setters
    extra: JSON = {}
    for key, value in data.items():
        if value is None:  # "not set", in `extra` too: it holds values only
            continue
        kind: Any = exact.get(key)
        if kind is type(value) and (kind is not int or _INT64_LOW <= value < _INT64_HIGH):  # most keys: no more to ask
            setattr(message, key, value)
            continue
        setter = setters.get(key)
        if setter is None or not setter(message, value):
            extra[key] = value
    if extra and plan.has_extra:
        getattr(message, EXTRA).update(extra)


_EXACT = {
    FieldDescriptor.TYPE_STRING: str,
    FieldDescriptor.TYPE_BOOL: bool,
    **dict.fromkeys((FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_SFIXED64), int),
}
_INT64_LOW, _INT64_HIGH = -(2**63), 2**63

# Sets one field from a JSON value; False when the value does not fit the field's type (it then goes to `extra`).
Setter = Callable[[Message, Any], bool]


@dataclass(frozen=True)
class _Plan:
    exact: dict[str, type]  # string, bool and int64 fields: a value of exactly that type fits (an int64 in range)
    setters: dict[str, Setter]  # every typed field
    has_extra: bool


@functools.cache
def _plan(descriptor: Descriptor) -> _Plan:
    """A setter for each typed field of a message type, and whether it has `extra`: made once per type, since
    reading the descriptor's facts for every key of every result costs most of a results download."""
    fields = [field for field in descriptor.fields if field.name != EXTRA]
    exact = {field.name: _EXACT[field.type] for field in fields if field.type in _EXACT and not field.is_repeated}
    return _Plan(exact, {field.name: _setter(field) for field in fields}, EXTRA in descriptor.fields_by_name)


def _setter(field: FieldDescriptor) -> Setter:
    """The setter of one field, by its kind: a map, a repeated field, a message, an enum, or a scalar."""
    name = field.name
    entry = field.message_type if field.type == FieldDescriptor.TYPE_MESSAGE else None
    if entry is not None and entry.GetOptions().map_entry:
        return _map_setter(name, entry)
    if field.is_repeated:
        if entry is not None:
            return functools.partial(_set_messages, name)
        return functools.partial(_set_values, name, _fits(field), _enum_numbers(field))
    if entry is not None:
        if entry.full_name == timestamp_pb2.Timestamp.DESCRIPTOR.full_name:
            return functools.partial(_set_timestamp, name)
        if entry.full_name == struct_pb2.Struct.DESCRIPTOR.full_name:
            return functools.partial(_set_struct, name)
        return functools.partial(_set_message, name)
    if (numbers := _enum_numbers(field)) is not None:
        return functools.partial(_set_enum, name, numbers)
    return functools.partial(_set_scalar, name, _fits(field))


def _map_setter(name: str, entry: Descriptor) -> Setter:
    key_field, value_field = entry.fields_by_name["key"], entry.fields_by_name["value"]
    if key_field.type != FieldDescriptor.TYPE_STRING:  # JSON keys are strings
        return _never
    if value_field.type == FieldDescriptor.TYPE_MESSAGE:
        return functools.partial(_set_message_map, name)
    return functools.partial(_set_map, name, _fits(value_field))


def _set_message_map(name: str, message: Message, value: Any) -> bool:
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        return False
    target = getattr(message, name)
    for key, item in value.items():
        fill(target[key], item)
    return True


def _set_map(name: str, fits: Callable[[Any], bool], message: Message, value: Any) -> bool:
    if not isinstance(value, dict) or not all(fits(v) for v in value.values()):
        return False
    getattr(message, name).update(value)
    return True


def _set_messages(name: str, message: Message, value: Any) -> bool:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        return False
    target = getattr(message, name)
    for item in value:
        fill(target.add(), item)
    return True


def _set_values(
    name: str, fits: Callable[[Any], bool], numbers: dict[str, int] | None, message: Message, value: Any
) -> bool:
    if not isinstance(value, list) or not all(fits(v) for v in value):
        return False
    getattr(message, name).extend([numbers[v.lower()] for v in value] if numbers else value)
    return True


def _set_message(name: str, message: Message, value: Any) -> bool:
    if not isinstance(value, dict):
        return False
    target = getattr(message, name)
    target.SetInParent()
    fill(target, value)
    return True


def _set_enum(name: str, numbers: dict[str, int], message: Message, value: Any) -> bool:
    if not isinstance(value, str):
        return False
    if (number := numbers.get(value.lower())) is not None:
        setattr(message, name, number)
    return True  # an unknown value leaves the enum UNSPECIFIED; the raw string is kept by the caller


def _set_scalar(name: str, fits: Callable[[Any], bool], message: Message, value: Any) -> bool:
    if not fits(value):
        return False
    setattr(message, name, value)
    return True


_TIMESTAMP_SECONDS = (-62_135_596_800, 253_402_300_800)  # [0001-01-01, 10000-01-01): what a Timestamp holds


def _set_timestamp(name: str, message: Message, value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if not _TIMESTAMP_SECONDS[0] <= value < _TIMESTAMP_SECONDS[1]:  # (NaN is no JSON)
        return False
    getattr(message, name).FromNanoseconds(int(value * 1_000_000_000))
    return True


def _set_struct(name: str, message: Message, value: Any) -> bool:
    if not isinstance(value, dict):
        return False
    getattr(message, name).update(value)
    return True


def _never(_message: Message, _value: Any) -> bool:
    return False


def _fits(field: FieldDescriptor) -> Callable[[Any], bool]:
    """Whether a JSON value fits a scalar field's type (an enum's: one of its names, as the gateway spells them)."""
    kind = field.type
    if kind == FieldDescriptor.TYPE_STRING:
        return lambda value: isinstance(value, str)
    if kind == FieldDescriptor.TYPE_BOOL:
        return lambda value: isinstance(value, bool)
    if (bounds := _INT_RANGES.get(kind)) is not None:
        low, high = bounds
        return lambda value: isinstance(value, int) and not isinstance(value, bool) and low <= value < high
    if kind in _FLOAT_TYPES:
        return lambda value: (
            isinstance(value, float)
            or (isinstance(value, int) and not isinstance(value, bool) and abs(value) <= sys.float_info.max)
        )
    if (numbers := _enum_numbers(field)) is not None:
        return lambda value: isinstance(value, str) and value.lower() in numbers
    return lambda value: False  # bytes: JSON has no bytes, so the value is kept in `extra` as it came


def _enum_numbers(field: FieldDescriptor) -> dict[str, int] | None:
    """An enum field's values by the gateway's spelling (`BATCH_STATUS_IN_PROGRESS` is `in_progress`); None for a
    field of another type."""
    if field.enum_type is None:
        return None
    name = field.enum_type.name  # BatchStatus -> BATCH_STATUS_
    prefix = "".join(f"_{c}" if c.isupper() and i else c for i, c in enumerate(name)).upper() + "_"
    return {value.name.removeprefix(prefix).lower(): value.number for value in field.enum_type.values}
