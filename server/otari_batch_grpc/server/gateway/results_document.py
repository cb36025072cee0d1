"""The gateway's results document, `{"results": [{custom_id, result, error}, ...]}`, parsed as its bytes arrive.

The gateway writes compact JSON, each item an object whose first key is `custom_id`, so the bytes `},{"custom_id":`
stand between two items. Those bytes cannot occur inside a JSON string (a quote there is escaped), so the text
before the last of them in the buffer is whole items, and that run is decoded in one call by the parser's `run`
function (`plain`: msgspec, which decodes such a run in about half the time the json module takes). Where the
pattern misleads (a nested object with a `custom_id` key, another spacing, another key order), the run does not
decode and the rest of the document is read exactly, item by item, with the json module's `raw_decode`, each item
then made by the parser's `item` function. The items after the last separator are one more run once the body ends
with `]}`. A document of another layout (keys before `results`) is parsed whole at the end. Either way memory holds
about one network chunk plus one item.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import msgspec

JSON = dict[str, Any]

_START = re.compile(rb'\s*\{\s*"results"\s*:\s*\[')
_SEPARATOR = b'},{"custom_id":'
_BETWEEN_ITEMS = re.compile(r"[\s,]*")
_DECODE = msgspec.json.Decoder().decode
_RAW_DECODE = json.JSONDecoder().raw_decode
NOT_RESULTS = "'results' is not a list of {custom_id, result, error}"


T = TypeVar("T")


class ResultsDocumentError(ValueError):
    """The body is not a results document (the message says how)."""


def plain(run: bytes) -> list[JSON]:
    """The items of a run (a JSON array of whole items) as they are; msgspec.DecodeError when it is not JSON."""
    return checked(_DECODE(run))


def as_is(item: JSON) -> JSON:
    """An item read exactly, kept as it is (with `plain`: a parser of JSON items)."""
    return item


class ResultsParser(Generic[T]):
    """feed() each chunk of the body, then end(); each returns the items that became whole, as `run` makes them
    from a run of items (`plain` keeps them as JSON) and `item` from one item read exactly."""

    def __init__(self, run: Callable[[bytes], list[T]], item: Callable[[JSON], T]) -> None:
        self._run, self._item = run, item
        self._bytes = b""  # before the first item is found, and on the fast path
        self._found = False  # `{"results": [` seen
        self._exact: codecs.IncrementalDecoder | None = None  # set once reading item by item
        self._text = ""
        self._done = False  # the closing `]` seen: the rest is ignored

    def feed(self, chunk: bytes) -> list[T]:
        if self._done:
            return []
        if self._exact is not None:
            self._text += self._exact.decode(chunk)
            return self._exact_items()
        self._bytes += chunk
        if not self._found:
            start = _START.match(self._bytes)
            if start is None:
                return []  # not yet known, or another layout: read on
            self._found, self._bytes = True, self._bytes[start.end() :]
        return self._fast_items()

    def end(self) -> list[T]:
        if self._done:
            return []
        if not self._found:
            return [self._item(item) for item in _whole(self._bytes)]
        if self._exact is None:
            last = self._last_items()
            if last is not None:
                return last
            self._read_exactly(self._bytes)
        assert self._exact is not None
        self._text += self._exact.decode(b"", final=True)
        items = self._exact_items()
        if not self._done:
            raise ResultsDocumentError("the results list ends early or holds something that is not JSON")
        return items

    def _last_items(self) -> list[T] | None:
        """The items not yet returned (after the last separator, or all of them when there was none), as one run,
        when the document ends right after them (`]}`); None otherwise."""
        tail = self._bytes.rstrip()
        if not tail.endswith(b"]}") or not tail.startswith(b"{"):
            return None
        try:
            items = self._run(b"[" + tail[:-2] + b"]")
        except msgspec.DecodeError:
            return None
        self._done, self._bytes = True, b""
        return items

    def _fast_items(self) -> list[T]:
        cut = self._bytes.rfind(_SEPARATOR)
        if cut < 0:
            return []
        try:
            items = self._run(b"[" + self._bytes[: cut + 1] + b"]")
        except msgspec.DecodeError:  # the pattern misled: not whole items
            self._read_exactly(self._bytes)
            return self._exact_items()
        self._bytes = self._bytes[cut + 2 :]
        return items

    def _read_exactly(self, rest: bytes) -> None:
        self._exact = codecs.getincrementaldecoder("utf-8")()
        self._text, self._bytes = self._exact.decode(rest), b""

    def _exact_items(self) -> list[T]:
        text, position = self._text, 0
        items: list[Any] = []
        while True:
            position = _BETWEEN_ITEMS.match(text, position).end()  # type: ignore[union-attr]
            if text.startswith("]", position):
                self._done, self._text = True, ""
                return [self._item(item) for item in checked(items)]
            try:
                item, position = _RAW_DECODE(text, position)
            except json.JSONDecodeError:
                break  # not whole yet (at the end: not JSON, which end() reports)
            items.append(item)
        self._text = text[position:]
        return [self._item(item) for item in checked(items)]


def checked(items: Any) -> list[JSON]:
    """`items` when it is a list of `{custom_id, ...}` objects; else ResultsDocumentError."""
    if not isinstance(items, list) or not all(isinstance(i, dict) and "custom_id" in i for i in items):
        raise ResultsDocumentError(NOT_RESULTS)
    return items


def _whole(body: bytes) -> list[JSON]:
    try:
        document = json.loads(body)
    except ValueError:
        raise ResultsDocumentError("not JSON") from None
    return checked(document.get("results") if isinstance(document, dict) else None)
