"""The orjson transcoder writes exactly the bytes the library's JSONTranscoder writes
(service/storage/transcoding.py): stored events, their chain hashes and every reader
depend on that, so it is checked over many generated values, the awkward ones
included."""

from __future__ import annotations

import enum
import math
import random
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from eventsourcing.persistence import DatetimeAsISO, DecimalAsStr, JSONTranscoder, UUIDAsHex

from domain.application import Programmes
from service.storage.stores import eventsourcing_env, parse_database_url
from service.storage.transcoding import OrjsonTranscoder


class Colour(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


def with_library_transcodings(transcoder: JSONTranscoder) -> JSONTranscoder:
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
        transcoder.register(transcoding)
    return transcoder


LIBRARY = with_library_transcodings(JSONTranscoder())
FAST = with_library_transcodings(OrjsonTranscoder())

ZONES = [UTC, None, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30)),
         timezone(timedelta(seconds=3725)), timezone(timedelta(0))]


#: Characters the two encoders must escape (or not) alike.
AWKWARD_TEXT = "ab\"\\\n\t\x00\x1f\x7fé€\u2028😀 "


def a_float(rng: random.Random) -> float:
    return rng.choice([
        rng.uniform(-1000, 1000), round(rng.uniform(0, 100), rng.randint(0, 4)),
        rng.random() * 10 ** rng.randint(-30, 30), -0.0, 0.0, 1e-4, 9.999e-5, 1e16,
        9999999999999998.0, 1e-05, 1e22, math.nan, math.inf, -math.inf,
        float.fromhex(f"0x1.{rng.getrandbits(52):013x}p{rng.randint(-1022, 1023)}"),
    ])


def a_datetime(rng: random.Random) -> datetime:
    return datetime(rng.randint(1, 9999), rng.randint(1, 12), rng.randint(1, 28),
                    rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59),
                    rng.choice([0, rng.randint(0, 999_999), rng.randint(0, 999) * 1000]),
                    tzinfo=rng.choice(ZONES))


def a_value(rng: random.Random, depth: int = 0) -> Any:
    choices = ["str", "int", "bool", "none", "float", "uuid", "datetime"]
    if depth < 3:
        choices += ["dict", "dict", "list", "tuple"]
    if rng.random() < 0.05:
        choices += ["decimal", "enum", "intenum", "bigint", "date", "intkey", "surrogate",
                    "set", "strsub"]
    kind = rng.choice(choices)
    if kind == "str":
        return "".join(rng.choice(AWKWARD_TEXT) for _ in range(rng.randint(0, 8)))
    if kind == "int":
        return rng.randint(-2**63, 2**64 - 1) if rng.random() < 0.2 else rng.randint(-100, 100)
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "none":
        return None
    if kind == "float":
        return a_float(rng)
    if kind == "uuid":
        return uuid.UUID(int=rng.getrandbits(128))
    if kind == "datetime":
        return a_datetime(rng)
    if kind == "dict":
        return {f"k{i}": a_value(rng, depth + 1) for i in range(rng.randint(0, 5))}
    if kind == "list":
        return [a_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    if kind == "tuple":
        return tuple(a_value(rng, depth + 1) for _ in range(rng.randint(0, 3)))
    if kind == "decimal":
        return Decimal("1.10")
    if kind == "enum":
        return Colour.RED
    if kind == "intenum":
        return Level.HIGH
    if kind == "bigint":
        return 2**70
    if kind == "date":
        return date(2026, 1, 2)
    if kind == "intkey":
        return {1: "one"}
    if kind == "surrogate":
        return "\ud800"
    if kind == "set":
        return {1}
    return type("Text", (str,), {})("sub")


def encoded(transcoder: JSONTranscoder, value: Any) -> bytes | type[BaseException]:
    try:
        return transcoder.encode(value)
    except Exception as error:
        return type(error)


def test_the_same_bytes_as_the_library_over_generated_values() -> None:
    rng = random.Random(17)
    for _ in range(20_000):
        state = {f"field{i}": a_value(rng) for i in range(rng.randint(0, 6))}
        assert encoded(FAST, state) == encoded(LIBRARY, state), state


def test_the_same_bytes_for_events_as_the_service_stores_them() -> None:
    rng = random.Random(3)
    for _ in range(2_000):
        state = {
            "event_id": uuid.UUID(int=rng.getrandbits(128)),
            "occurred_at": a_datetime(rng),
            "recorded_by": "clinic system",
            "data": {"patient_ref": "sealed:v1:abc", "pain_nrs": rng.randint(0, 10),
                     "force_percent_body_weight": a_float(rng),
                     "plan": {"modality": "mechanical_table", "supervised": True}},
            "timestamp": datetime.now(UTC),
            "class_version": 2,
        }
        fast = FAST.encode(state)
        assert fast == LIBRARY.encode(state)
        assert LIBRARY.decode(fast) == LIBRARY.decode(LIBRARY.encode(state))


def test_floats_either_side_of_the_exponent_thresholds() -> None:
    for value in (1e-4, math.nextafter(1e-4, 0), 1e16, math.nextafter(1e16, 0), 5e-324,
                  1.7976931348623157e308, 0.1 + 0.2, -1e-4, -9999999999999998.0):
        assert FAST.encode({"v": value}) == LIBRARY.encode({"v": value})


def test_other_transcodings_for_uuids_or_datetimes_leave_it_to_the_library() -> None:
    class UUIDAsText(UUIDAsHex):
        name = "uuid_text"

        def encode(self, obj: uuid.UUID) -> str:
            return str(obj)

    transcoder = with_library_transcodings(OrjsonTranscoder())
    transcoder.register(UUIDAsText())
    value = {"id": uuid.uuid4()}
    assert transcoder.encode(value) == (b'{"id":{"_type_":"uuid_text","_data_":"%s"}}'
                                        % str(value["id"]).encode())


def test_an_unregistered_type_is_refused_as_the_library_refuses_it() -> None:
    with pytest.raises(Exception, match="not serializable") as library:
        LIBRARY.encode({"when": date(2026, 1, 2)})
    with pytest.raises(type(library.value), match="not serializable"):
        FAST.encode({"when": date(2026, 1, 2)})


def test_the_service_stores_events_with_it(tmp_path: Any) -> None:
    store = parse_database_url(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    programmes = Programmes(env=eventsourcing_env(store))
    try:
        assert type(programmes.mapper.transcoder) is OrjsonTranscoder
    finally:
        programmes.close()
