"""The constraints written beside each field in the .proto files, enforced in one place before any upstream call.

Each check names the field path as the caller wrote it (`requests[3].custom_id`) and says how to fix it. All
violations of a request are reported together, in a google.rpc.BadRequest.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Collection, Mapping, Sequence

import msgspec
from google.protobuf import struct_pb2

from otari_batch_grpc.server.domain.errors import FieldViolation, invalid_argument
from otari_batch_grpc.server.util.ids import MAX_ID_CHARS
from otari_batch_grpc.server.util.quoting import quoted
from otari_batch_grpc.server.util.stamps import GATEWAY_OWNER_KEY, PART_KEY, REQUEST_ID_KEY, STAMPED_KEYS
from otari_batch_grpc.v1 import batch_service_pb2

MAX_CUSTOM_ID_CHARS = 512
MAX_METADATA_KEY_CHARS = 64
MAX_METADATA_VALUE_CHARS = 512
# The upstream (OpenAI) takes 16 metadata pairs; the gateway stamps one itself, this service one more.
GATEWAY_METADATA_PAIRS = 16
METADATA_PAIRS = GATEWAY_METADATA_PAIRS - 2
RESERVED_METADATA_KEYS = STAMPED_KEYS
MAX_ATTEMPTS = 5
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20
MAX_WINDOW_CHARS = 16
_KEY_SHOWN_CHARS = 100


def check_create(request: batch_service_pb2.CreateBatchRequest) -> None:
    problems: list[FieldViolation] = []
    _check_model(request.model, problems)
    if not request.requests:
        problems.append(FieldViolation("requests", "must hold at least one request; it is empty"))
    else:
        RequestsCheck().check(request.requests, problems)
    _check_header(request, problems)
    _raise(problems)


def check_upload_header(header: batch_service_pb2.CreateBatchRequest) -> None:
    """An UploadBatch's first message: a CreateBatchRequest without requests (they follow in chunks)."""
    problems: list[FieldViolation] = []
    _check_model(header.model, problems)
    if header.requests:
        problems.append(FieldViolation("requests", "must be empty: send the requests in the chunks after the header"))
    _check_header(header, problems)
    _raise([FieldViolation(f"header.{p.field}", p.description) for p in problems])


class RequestsCheck:
    """The checks of a batch's requests, however many messages bring them: indexes count on, and custom_ids are
    unique across all of them."""

    def __init__(self) -> None:
        self.count = 0
        self._first_seen: dict[str, int] = {}

    def check(self, items: Sequence[batch_service_pb2.BatchRequestItem], problems: list[FieldViolation]) -> None:
        first_seen = self._first_seen
        for i, item in enumerate(items, start=self.count):
            custom_id = item.custom_id
            if custom_id in first_seen or not custom_id or len(custom_id) > MAX_CUSTOM_ID_CHARS:
                problems.append(_custom_id_problem(f"requests[{i}].custom_id", custom_id, first_seen))
            else:
                first_seen[custom_id] = i
            if text := item.body_json:  # (the common case, without asking which body the request has)
                if (problem_text := _body_json_problem(text)) is not None:
                    problems.append(FieldViolation(f"requests[{i}].body_json", problem_text))
            elif (problem := _body_problem(item, i)) is not None:
                problems.append(problem)
            if len(problems) >= 100:  # enough to act on; a 10,000-item mistake need not echo 10,000 times
                break
        self.count += len(items)

    def chunk(self, items: Sequence[batch_service_pb2.BatchRequestItem]) -> None:
        """Check the next chunk of an upload: INVALID_ARGUMENT naming each bad request by its index in the batch."""
        problems: list[FieldViolation] = []
        self.check(items, problems)
        _raise(problems)


def _check_header(request: batch_service_pb2.CreateBatchRequest, problems: list[FieldViolation]) -> None:
    _check_metadata(request, problems)
    if not 0 <= request.max_attempts <= MAX_ATTEMPTS:
        problems.append(
            FieldViolation("max_attempts", f"must be 1 to {MAX_ATTEMPTS} (0: 1, no re-run); got {request.max_attempts}")
        )
    if request.request_id and not _is_uuid(request.request_id):
        problems.append(
            FieldViolation(
                "request_id", f"must be a UUID such as {uuid.uuid4()}, or empty; got {quoted(request.request_id)}"
            )
        )
    window = request.completion_window
    if window and not window.strip():
        problems.append(FieldViolation("completion_window", "must not be blank; leave it empty for 24h"))
    elif len(window) > MAX_WINDOW_CHARS or not window.isprintable():
        problems.append(
            FieldViolation(
                "completion_window", f"must be a window such as '24h' (at most {MAX_WINDOW_CHARS} characters)"
            )
        )
    if request.user:
        check_id("user", request.user, problems)


def check_batch_ref(batch_id: str, provider: str, *, start_index: int = 0) -> None:
    """Get, Cancel and StreamResults: which batch, and (optional here) which provider holds it."""
    problems: list[FieldViolation] = []
    check_id("batch_id", batch_id, problems)
    if provider:
        check_id("provider", provider, problems)
    if start_index < 0:
        problems.append(FieldViolation("start_index", "must be 0 or more"))
    _raise(problems)


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return len(value) in (32, 36)


def check_list(request: batch_service_pb2.ListBatchesRequest) -> None:
    problems: list[FieldViolation] = []
    if request.provider:
        check_id("provider", request.provider, problems)
    if request.page_size < 0:
        problems.append(FieldViolation("page_size", f"must be 0 (default) to {MAX_PAGE_SIZE}, not negative"))
    _raise(problems)


def check_watch_many(batch_ids: Sequence[str], limit: int) -> None:
    problems: list[FieldViolation] = []
    if len(batch_ids) > limit:
        problems.append(FieldViolation("batch_ids", f"at most {limit:,} ids; got {len(batch_ids):,}"))
    for i, batch_id in enumerate(batch_ids[:limit]):
        check_id(f"batch_ids[{i}]", batch_id, problems)
    _raise(problems)


def wait_timeout(seconds: float, limit: float) -> float:
    """`seconds` from a Duration's own fields (ToTimedelta overflows on a Duration of 2^62 s)."""
    if seconds <= 0:
        _raise([FieldViolation("timeout", "must be positive; leave it unset for the default")])
    return min(seconds, limit)


def page_size(requested: int) -> int:
    """AIP-158: 0 means the default; larger than the maximum is capped, not refused."""
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def _raise(problems: list[FieldViolation]) -> None:
    if problems:
        raise invalid_argument(problems)


def _non_finite(struct: struct_pb2.Struct) -> list[str] | None:
    """The path's steps (`.key`, `[i]`) to the first NaN or infinite number in a Struct, if any (a Struct number is
    a double). Steps are made only for the path found: the walk itself builds no strings."""
    for key, value in struct.fields.items():
        if (steps := _non_finite_value(value)) is not None:
            return [f".{_short(key)}", *steps]
    return None


def _non_finite_value(value: struct_pb2.Value) -> list[str] | None:
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        return None if math.isfinite(value.number_value) else []
    if kind == "struct_value":
        return _non_finite(value.struct_value)
    if kind == "list_value":
        for i, item in enumerate(value.list_value.values):
            if (steps := _non_finite_value(item)) is not None:
                return [f"[{i}]", *steps]
    return None


def _short(key: str) -> str:
    """A Struct key as a step of a field path: printable, and short."""
    shown = key if key.isprintable() else repr(key)[1:-1]
    return shown if len(shown) <= 40 else f"{shown[:40]}…"


def check_id(name: str, value: str, problems: list[FieldViolation]) -> None:
    if not value.strip():
        problems.append(FieldViolation(name, "is required"))
    elif value in (".", "..") or "/" in value:  # a path segment the URL would resolve away, or several segments
        problems.append(FieldViolation(name, f"{quoted(value)} is not an id"))
    elif len(value) > MAX_ID_CHARS or any(c.isspace() or not c.isprintable() for c in value):
        problems.append(FieldViolation(name, f"must be at most {MAX_ID_CHARS} printable characters, no spaces"))


def _check_model(model: str, problems: list[FieldViolation]) -> None:
    if not model.strip():
        problems.append(FieldViolation("model", "is required, as 'provider:model', e.g. 'openai:gpt-4o-mini'"))
        return
    for sep in (":", "/"):
        provider, found, name = model.partition(sep)
        if found and provider.strip() and name.strip():
            return
    problems.append(
        FieldViolation("model", f"must be 'provider:model', e.g. 'openai:gpt-4o-mini'; got {quoted(model)}")
    )


def _body_problem(item: batch_service_pb2.BatchRequestItem, i: int) -> FieldViolation | None:
    if item.WhichOneof("content") == "body_json":
        if (problem := _body_json_problem(item.body_json)) is not None:
            return FieldViolation(f"requests[{i}].body_json", problem)
    elif not item.body.fields:
        return FieldViolation(f"requests[{i}].body", "is required: the chat-completion request body (or body_json)")
    elif (steps := _non_finite(item.body)) is not None:
        where = f"requests[{i}].body" + "".join(steps)
        return FieldViolation(where, "must be a finite number: JSON has no NaN or Infinity")
    return None


def _custom_id_problem(where: str, custom_id: str, first_seen: dict[str, int]) -> FieldViolation:
    if not custom_id:
        return FieldViolation(where, "is required")
    if len(custom_id) > MAX_CUSTOM_ID_CHARS:
        return FieldViolation(where, f"must be at most {MAX_CUSTOM_ID_CHARS} characters")
    return FieldViolation(
        where,
        f"{quoted(custom_id)} is already used by requests[{first_seen[custom_id]}]; custom_id must be unique "
        "within the batch",
    )


_decode_json = msgspec.json.Decoder().decode  # a number beyond a double's exponent fails it ("out of range")
# Nesting deeper than a Struct may go (protobuf's limit is 100): the gateway's JSON parser would fail on it, or worse.
MAX_JSON_DEPTH = 64
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")
# Every ASCII digit as "0", every other character as " " (a translation table for str.translate): a digit run stays.
_NUMBER_SHAPE = {c: "0" if "0" <= chr(c) <= "9" else " " for c in range(128)}
_LONG_DIGITS = "0" * 309  # the shortest digit run that can be a number beyond a double
_NOT_SHAPE = bytes(b for b in range(256) if not (0x30 <= b <= 0x39 or b in b"[{"))  # all but digits, `[` and `{`


def _body_json_problem(text: str) -> str | None:
    """What is wrong with a body_json, if anything: it must be one JSON object, not empty, nested at most
    MAX_JSON_DEPTH deep, with numbers a double holds."""
    if not text:
        return "is required: the chat-completion request body as a JSON object"
    # Its digits and opening brackets, in one pass (a text's bytes, as the gateway reads them): what the checks of
    # depth and of numbers beyond a double look at first, since only text with that many of them can fail them.
    shape = text.encode("utf-8", "surrogatepass").translate(None, _NOT_SHAPE)
    opening = shape.count(b"[") + shape.count(b"{")
    # Before parsing: a deep enough text would exhaust the recursion.
    if opening > MAX_JSON_DEPTH and _depth(text) > MAX_JSON_DEPTH:
        return f"nests deeper than {MAX_JSON_DEPTH} levels of objects and arrays"
    try:
        value = _decode_json(text)
    except msgspec.DecodeError as exc:
        if "out of range" in str(exc) and (beyond := _infinite_number(text)) is not None:
            return beyond
        if "\\ud" in text.lower():
            return f"is not valid JSON here: {exc} (a lone UTF-16 surrogate escape has no UTF-8 form)"
        return f"is not valid JSON: {exc}"
    if not isinstance(value, dict):
        return 'must be a JSON object (the chat-completion request body), like {"messages": [...]}'
    if not value:
        return "is required: the chat-completion request body, not an empty object"
    # An integer of 309 digits or more decodes exactly here, but the gateway reads it as a double: infinity (the
    # run may be inside a string: `_infinite_number` reads the numbers).
    if len(shape) - opening >= len(_LONG_DIGITS) and _LONG_DIGITS in text.translate(_NUMBER_SHAPE):
        return _infinite_number(text)
    return None


def _depth(text: str) -> int:
    """How deep objects and arrays nest in JSON text (strings left out)."""
    depth = deepest = 0
    for bracket in _BRACKET.finditer(_JSON_STRING.sub('""', text)):
        if bracket.group() in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


class _OutOfRange(ValueError):
    pass


def _finite(literal: str) -> float:
    if not math.isfinite(float(literal)):
        raise _OutOfRange(literal)
    return 0.0


def _infinite_number(text: str) -> str | None:
    """The problem with a (valid JSON) body holding a number beyond a double (1e999, or 400 digits): the gateway
    would read it as infinity, which it cannot send on."""
    try:
        json.loads(text, parse_float=_finite, parse_int=_finite)
    except _OutOfRange as exc:
        return f"must hold finite numbers only: {quoted(str(exc), 24)} is beyond a double"
    return None


def _check_metadata(request: batch_service_pb2.CreateBatchRequest, problems: list[FieldViolation]) -> None:
    metadata = request.metadata
    if len(metadata) > METADATA_PAIRS:
        problems.append(
            FieldViolation(
                "metadata",
                f"at most {METADATA_PAIRS} pairs, got {len(metadata)}: the provider keeps {GATEWAY_METADATA_PAIRS}, "
                f"the gateway stamps {GATEWAY_OWNER_KEY} on the batch and this service one more ({REQUEST_ID_KEY} "
                f"with a request_id, {PART_KEY} on each part of a batch of several)",
            )
        )
    check_pairs("metadata", metadata, problems, reserved=RESERVED_METADATA_KEYS)


def check_pairs(
    name: str, pairs: Mapping[str, str], problems: list[FieldViolation], *, reserved: Collection[str] = ()
) -> None:
    """Metadata pairs (a batch's, a webhook endpoint's filter): keys 1 to 64 characters, none of `reserved`, values
    at most 512."""
    for key in sorted(pairs):
        value = pairs[key]
        # the key is the field's name: whole unless absurdly long (a status must stay small)
        where = f"{name}[{key}]" if len(key) <= _KEY_SHOWN_CHARS else f"{name}[{key[:_KEY_SHOWN_CHARS]}…]"
        if key in reserved:
            problems.append(FieldViolation(where, "is stamped by the service or gateway; pick another key"))
        elif not key or len(key) > MAX_METADATA_KEY_CHARS:
            problems.append(FieldViolation(where, f"keys must be 1 to {MAX_METADATA_KEY_CHARS} characters"))
        if len(value) > MAX_METADATA_VALUE_CHARS:
            problems.append(
                FieldViolation(
                    where,
                    f"values must be at most {MAX_METADATA_VALUE_CHARS} characters; this one has {len(value)}",
                )
            )
