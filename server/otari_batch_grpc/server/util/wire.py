"""Protobuf's wire format, the little of it the service handles by hand: a message's bytes made of parts serialized
apart (a results chunk from cached entries, an upload's digest from its chunks), and an upload chunk's requests
measured in its bytes."""

from __future__ import annotations


def varint(value: int) -> bytes:
    """A non-negative integer as a protobuf varint."""
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def field_entry(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field's entry: its tag, the payload's length, the payload."""
    return tag + varint(len(payload)) + payload


def read_varint(data: bytes, at: int) -> tuple[int, int]:
    """The varint at `at` in `data`, and where what follows it starts."""
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, at
        shift += 7
