"""The gateway's results document, `{"results": [{custom_id, result, error}, ...]}`, parsed as its bytes arrive.

The gateway writes compact JSON, each item an object whose first key is `custom_id`, so the bytes `},{"custom_id":`
stand between two items. Those bytes cannot occur inside a JSON string (a quote there is escaped), so the text
before the last of them in the buffer is whole items, and msgspec decodes that run in one call (about half the
time of the json module item by item). Where the pattern misleads (a nested object with a `custom_id` key, another
spacing, another key order), the run does not decode and the rest of the document is read exactly, item by item,
with the json module's `raw_decode`. A document of another layout (keys before `results`) is parsed whole at the
end. Either way memory holds about one network chunk plus one item.
"""

from __future__ import annotations

import codecs
import json
import re
from typing import Any

import msgspec

JSON = dict[str, Any]

_START = re.compile(rb'\s*\{\s*"results"\s*:\s*\[')
_SEPARATOR = b'},{"custom_id":'
_BETWEEN_ITEMS = re.compile(r"[\s,]*")
_DECODE = msgspec.json.Decoder().decode
_RAW_DECODE = json.JSONDecoder().raw_decode
NOT_RESULTS = "'results' is not a list of {custom_id, result, error}"


class ResultsDocumentError(ValueError):
    """The body is not a results document (the message says how)."""


class ResultsParser:
    """feed() each chunk of the body, then end(); each returns the items that became whole."""

    def __init__(self) -> None:
        self._bytes = b""  # before the first item is found, and on the fast path
        self._found = False  # `{"results": [` seen
        self._exact: codecs.IncrementalDecoder | None = None  # set once reading item by item
        self._text = ""
        self._done = False  # the closing `]` seen: the rest is ignored

    def feed(self, chunk: bytes) -> list[JSON]:
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

    def end(self) -> list[JSON]:
        if self._done:
            return []
        if not self._found:
            return _whole(self._bytes)
        if self._exact is None:
            self._read_exactly(self._bytes)
        assert self._exact is not None
        self._text += self._exact.decode(b"", final=True)
        items = self._exact_items()
        if not self._done:
            raise ResultsDocumentError("the results list ends early or holds something that is not JSON")
        return items

    def _fast_items(self) -> list[JSON]:
        cut = self._bytes.rfind(_SEPARATOR)
        if cut < 0:
            return []
        try:
            items = _DECODE(b"[" + self._bytes[: cut + 1] + b"]")
        except msgspec.MsgspecError:
            self._read_exactly(self._bytes)
            return self._exact_items()
        self._bytes = self._bytes[cut + 2 :]
        return _checked(items)

    def _read_exactly(self, rest: bytes) -> None:
        self._exact = codecs.getincrementaldecoder("utf-8")()
        self._text, self._bytes = self._exact.decode(rest), b""

    def _exact_items(self) -> list[JSON]:
        text, position = self._text, 0
        items: list[Any] = []
        while True:
            position = _BETWEEN_ITEMS.match(text, position).end()  # type: ignore[union-attr]
            if text.startswith("]", position):
                self._done, self._text = True, ""
                return _checked(items)
            try:
                item, position = _RAW_DECODE(text, position)
            except json.JSONDecodeError:
                break  # not whole yet (at the end: not JSON, which end() reports)
            items.append(item)
        self._text = text[position:]
        return _checked(items)


def _checked(items: Any) -> list[JSON]:
    if not isinstance(items, list) or not all(isinstance(i, dict) and "custom_id" in i for i in items):
        raise ResultsDocumentError(NOT_RESULTS)
    return items


def _whole(body: bytes) -> list[JSON]:
    try:
        document = json.loads(body)
    except ValueError:
        raise ResultsDocumentError("not JSON") from None
    return _checked(document.get("results") if isinstance(document, dict) else None)
