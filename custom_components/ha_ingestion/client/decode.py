"""The JSON of a frame: decoded in one call, or, for a big frame, in steps the loop can run between.

A big frame (the first message of `subscribe_entities` from a big remote holds every state: 2.7 MB
for 20,000 entities) decoded in one C call blocks the loop for all of it, and hands every object
it makes to the garbage collector's youngest generation at once: one young collection of them
all right after it, and one of the middle generation of them all later (111.8 ms and 134.7 ms in
a reduced `scripts/bench backfill` run on the code before). In steps, each step is a few
milliseconds and the collector meets the objects a step at a time, as it does for any other work.

The stepped walk: objects and arrays down to `WALK_DEPTH` (a subscription event's
`event` → `a` → entity id) are walked member by member here (a frame holding several messages,
an array, as Home Assistant sends the messages waiting for the socket, is walked as each message
alone); every value deeper than that, and every scalar, is decoded in one call of the standard
library's C scanner. A step ends once it has decoded `STEP_CHARS` characters. The grammar is
JSON's (RFC 8259), like orjson's: no NaN/Infinity, no trailing commas, nothing after the value.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
import json
from typing import Any

import orjson

# Characters a step: short enough that no step holds the loop long, long enough that the steps cost
# little more than one orjson call (the figures: `scripts/bench decode`, docs/performance.md).
STEP_CHARS = 128 * 1024
WALK_DEPTH = 3

_SPACE = frozenset(" \t\n\r")


class DecodeError(ValueError):
    """The text is not JSON."""


def _no_constant(name: str) -> Any:
    raise DecodeError(f"{name} is not JSON")


# The standard library's C scanner (typeshed does not describe these two).
_scan: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder(  # type: ignore[attr-defined]
    parse_constant=_no_constant
).scan_once
_scan_string: Callable[[str, int], tuple[str, int]] = json.decoder.scanstring  # type: ignore[attr-defined]


def loads(raw: str | bytes) -> Any:
    """Decode in one call."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        raise DecodeError(str(err)) from err


def loads_in_steps(text: str) -> Generator[None, None, Any]:
    """Decode, pausing (yield) after each `STEP_CHARS` characters; the value is the return value."""
    walk = _Walk(text)
    start = _skip(text, 0)
    try:
        if text[start : start + 1] == "[":  # several messages in one frame: each walked alone
            value = yield from walk.array(start + 1, 0)
        else:
            value = yield from walk.value(start, 0)
    # The scanner's JSONDecodeError is a ValueError; nesting past the C stack a RecursionError.
    except (ValueError, IndexError, RecursionError) as err:
        raise DecodeError(f"{err} (at or after character {walk.pos})") from None
    end = _skip(text, walk.pos)
    if end != len(text):
        raise DecodeError(f"extra data at character {end}")
    return value


def _skip(text: str, pos: int) -> int:
    """Past any space at `pos` (Home Assistant sends none)."""
    while text[pos : pos + 1] in _SPACE:
        pos += 1
    return pos


class _Walk:
    """One text being decoded: where it is, and where the next pause is due."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self._pause_at = STEP_CHARS

    def value(self, pos: int, depth: int) -> Generator[None, None, Any]:
        """The value at `pos` (no space before it); `self.pos` ends after it."""
        char = self.text[pos]
        if depth < WALK_DEPTH and char == "{":
            return (yield from self._object(pos + 1, depth + 1))
        if depth < WALK_DEPTH and char == "[":
            return (yield from self.array(pos + 1, depth + 1))
        value = self._scalar(pos)
        if self._due():
            yield
        return value

    def _due(self) -> bool:
        """Whether a step ends here: `STEP_CHARS` decoded since the last pause."""
        if self.pos < self._pause_at:
            return False
        self._pause_at = self.pos + STEP_CHARS
        return True

    def _scalar(self, pos: int) -> Any:
        """A value decoded in one call (a scalar, or a container below the walk)."""
        try:
            value, self.pos = _scan(self.text, pos)
        except StopIteration:
            raise DecodeError(f"expected a value at character {pos}") from None
        return value

    def _next(self, pos: int, close: str) -> tuple[int, bool]:
        """After a member: where the next one starts, and whether the container ended."""
        text = self.text
        pos = _skip(text, pos)
        char = text[pos]
        if char == ",":
            return _skip(text, pos + 1), False
        if char == close:
            return pos + 1, True
        raise DecodeError(f"expected ',' or {close!r} at character {pos}")

    def _object(self, pos: int, depth: int) -> Generator[None, None, dict[str, Any]]:
        text = self.text
        out: dict[str, Any] = {}
        pos = _skip(text, pos)
        if text[pos] == "}":
            self.pos = pos + 1
            return out
        walk = depth < WALK_DEPTH
        while True:
            if text[pos] != '"':
                raise DecodeError(f"expected a name in quotes at character {pos}")
            key, pos = _scan_string(text, pos + 1)
            pos = _skip(text, pos)
            if text[pos] != ":":
                raise DecodeError(f"expected ':' at character {pos}")
            pos = _skip(text, pos + 1)
            if walk:
                out[key] = yield from self.value(pos, depth)
            else:  # the common case (each entity of a message), without a generator per member
                out[key] = self._scalar(pos)
                if self._due():
                    yield
            pos, ended = self._next(self.pos, "}")
            if ended:
                self.pos = pos
                return out

    def array(self, pos: int, depth: int) -> Generator[None, None, list[Any]]:
        """The array whose `[` is before `pos`, its items at `depth`."""
        text = self.text
        out: list[Any] = []
        pos = _skip(text, pos)
        if text[pos] == "]":
            self.pos = pos + 1
            return out
        while True:
            out.append((yield from self.value(pos, depth)))
            pos, ended = self._next(self.pos, "]")
            if ended:
                self.pos = pos
                return out
