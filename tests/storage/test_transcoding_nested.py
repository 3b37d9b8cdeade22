"""The orjson transcoder looks at a dict's UUIDs, datetimes and floats in the dict's
own pass (service/storage/transcoding.py): still exactly the library's bytes, or
the library's error, for them at any depth, under keys of any type, in lists in
dicts and dicts in lists (tests/storage/test_transcoding.py's generated values,
nested deeper)."""

from __future__ import annotations

import random
import uuid
from typing import Any

from tests.storage.test_transcoding import FAST, LIBRARY, a_datetime, a_float, a_value, encoded


class Key(str):
    pass


def a_key(rng: random.Random, index: int) -> Any:
    if rng.random() < 0.97:
        return f"k{index}"
    return rng.choice([Key(f"k{index}"), index, None, True, 1.5, uuid.UUID(int=index)])


def a_leaf(rng: random.Random) -> Any:
    kind = rng.choice(["uuid", "datetime", "float", "float", "value"])
    if kind == "uuid":
        return uuid.UUID(int=rng.getrandbits(128))
    if kind == "datetime":
        return a_datetime(rng)
    if kind == "float":
        return a_float(rng)
    return a_value(rng, depth=3)


def a_nested(rng: random.Random, depth: int) -> Any:
    if depth >= 5 or rng.random() < 0.3:
        return a_leaf(rng)
    kind = rng.choice(["dict", "dict", "list", "tuple"])
    if kind == "dict":
        return {a_key(rng, i): a_nested(rng, depth + 1) for i in range(rng.randint(0, 5))}
    items = [a_nested(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return items if kind == "list" else tuple(items)


def test_the_same_bytes_as_the_library_at_any_depth() -> None:
    rng = random.Random(29)
    for _ in range(10_000):
        state = {f"field{i}": a_nested(rng, 1) for i in range(rng.randint(0, 5))}
        assert encoded(FAST, state) == encoded(LIBRARY, state), state


def test_a_dict_shared_by_two_fields_is_written_twice_and_left_unchanged() -> None:
    inner = {"id": uuid.UUID(int=7), "n": 0.5}
    state = {"a": inner, "b": [inner, (inner,)], "c": {"d": inner}}
    assert FAST.encode(state) == LIBRARY.encode(state)
    assert inner == {"id": uuid.UUID(int=7), "n": 0.5}
