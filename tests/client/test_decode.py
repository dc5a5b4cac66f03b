"""The JSON of a frame decoded in steps: the same values as at once, pauses, and the same refusals."""

from __future__ import annotations

from collections.abc import Generator
import json
import random
from typing import Any

import orjson
import pytest

from custom_components.ha_ingestion.client import decode


def run(steps: Generator[None, None, Any]) -> tuple[Any, int]:
    """The value and how many times it paused."""
    pauses = 0
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value, pauses
        pauses += 1


def random_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(9 if depth < 6 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.random() < 0.5
    if kind == 2:
        return rng.randrange(-(10**12), 10**12)
    if kind == 3:
        return rng.uniform(-1e6, 1e6)
    if kind in (4, 5):
        # Quotes, backslashes, braces, commas, colons, control and non-ASCII characters.
        alphabet = 'ab"\\{}[],: \n\t\x01é€😀'
        return "".join(rng.choice(alphabet) for _ in range(rng.randrange(8)))
    if kind in (6, 7):
        return {
            f"k{n}{rng.choice('"{},:')}": random_value(rng, depth + 1)
            for n in range(rng.randrange(5))
        }
    return [random_value(rng, depth + 1) for _ in range(rng.randrange(5))]


def random_text(rng: random.Random, value: Any) -> str:
    """The value as JSON, compact or with space everywhere JSON allows it."""
    if rng.random() < 0.5:
        return orjson.dumps(value).decode()
    text = json.dumps(value, indent=rng.choice([None, 1, "\t"]), separators=(" , ", " :\r\n"))
    return f" \n{text}\t "


@pytest.mark.parametrize("step_chars", [1, 40, decode.STEP_CHARS])
def test_the_same_values_as_decoded_at_once(
    monkeypatch: pytest.MonkeyPatch, step_chars: int
) -> None:
    monkeypatch.setattr(decode, "STEP_CHARS", step_chars)
    rng = random.Random(20261202)
    for _ in range(300):
        text = random_text(rng, random_value(rng))
        value, _pauses = run(decode.loads_in_steps(text))
        assert value == orjson.loads(text) == decode.loads(text)


def subscription_event(entities: int) -> str:
    added = {
        f"sensor.s{n}": {"s": str(n), "a": {"friendly_name": f"S {n}"}, "c": "01J", "lc": 1.5}
        for n in range(entities)
    }
    return orjson.dumps({"id": 7, "type": "event", "event": {"a": added}}).decode()


def test_a_big_text_pauses_after_each_step_and_a_small_one_never(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(decode, "STEP_CHARS", 1000)
    big = subscription_event(200)  # about 70 characters an entity
    value, pauses = run(decode.loads_in_steps(big))
    assert value == orjson.loads(big)
    # A pause after the value that crosses each 1,000 characters: one entity at most late.
    assert len(big) // 1000 - 1 <= pauses <= len(big) // 1000
    small = subscription_event(10)
    assert len(small) < 1000
    assert run(decode.loads_in_steps(small)) == (orjson.loads(small), 0)


@pytest.mark.parametrize("messages", [1, 2, 3])
def test_the_walk_goes_down_to_the_entities_and_no_deeper(
    monkeypatch: pytest.MonkeyPatch, messages: int
) -> None:
    """Each entity is decoded in one call, also when a frame holds several messages (an array)."""
    monkeypatch.setattr(decode, "STEP_CHARS", 1)
    entities = 3
    message = subscription_event(entities)
    text = message if messages == 1 else f"[{','.join([message] * messages)}]"
    value, pauses = run(decode.loads_in_steps(text))
    assert value == orjson.loads(text)
    # id, type and each entity of each message: one pause after each value decoded in one call.
    assert pauses == messages * (2 + entities)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "  ",
        "{",
        "[",
        '{"a":1,}',
        "[1,]",
        "[1,,2]",
        '{"a" 1}',
        '{"a":}',
        "{a:1}",
        '{"a":1 "b":2}',
        "[1 2]",
        "[01]",
        "[tru]",
        '"unterminated',
        '["a\x01"]',
        '{"a":1}x',
        "[1]]",
        "NaN",
        "[Infinity]",
        '{"a":-Infinity}',
        '{"a":{"b":{"c":{"d":[1,]}}}}',
        '{"id":1,"type":"event","event":{"a":{"sensor.x":{"s":"1",}}}}',
        "[" * 200_000 + "]" * 200_000,  # nested past any stack
    ],
    ids=lambda text: text if len(text) < 80 else f"{text[:20]}...({len(text)} characters)",
)
def test_what_is_not_json_is_refused_as_orjson_refuses_it(text: str) -> None:
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(text)
    with pytest.raises(decode.DecodeError):
        decode.loads(text)
    with pytest.raises(decode.DecodeError):
        run(decode.loads_in_steps(text))
