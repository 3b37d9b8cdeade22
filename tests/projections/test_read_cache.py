"""A worker's reads of the projections, kept while the projection's marker stays
put: answered without the store, never older than `staleness` or than a
client's `min_position`."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

from projections.reading import ReadCache, Reader
from projections.store import Marker
from service.http.api.context import POSITIONS
from tests import builders as b
from tests.projections.test_endpoints import A, World


class CountingStore:
    """The real read models, counting what the Reader asks of them."""

    def __init__(self, read_models: Any) -> None:
        self.read_models = read_models
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.read_models, name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return method(*args, **kwargs)

        return counted


def reader_of(world: World, staleness: float) -> tuple[Reader, CountingStore]:
    store = CountingStore(world.app.extensions["traction"].read_models)
    return Reader(store, staleness=staleness), store  # type: ignore[arg-type]


def test_an_unchanged_read_is_answered_from_memory(app, client, tokens):
    world = World(app, client, tokens)
    world.project()
    reader, store = reader_of(world, staleness=3600)
    first = reader.clinic(A)
    for _ in range(5):
        assert reader.clinic(A) == first
        assert reader.summary(A, world.a[0]) == reader.summary(A, world.a[0])
    assert store.calls == Counter(live_marker=1, clinic_dashboard=1, summary=1)


def test_a_read_is_never_older_than_the_client_s_min_position(app, client, tokens):
    world = World(app, client, tokens)
    world.project()
    reader, _ = reader_of(world, staleness=3600)
    before = reader.clinic(A)
    # The receipt shows the clinic's count; the reader works in global positions.
    position = app.extensions[POSITIONS].global_of(
        A, world.post(A, world.a[1], [b.pain(0, days=5)], tokens.writer_a))
    assert position is not None
    world.project()
    assert reader.clinic(A) == before  # within the staleness: what it had
    assert reader.wait_for(position) >= position
    after = reader.clinic(A)
    assert after.position >= position and after.digest != before.digest


def test_with_no_staleness_every_read_checks_the_marker_but_reloads_only_changes(
        app, client, tokens):
    world = World(app, client, tokens)
    world.project()
    reader, store = reader_of(world, staleness=0)
    first = reader.network()
    assert reader.network() == first
    assert (store.calls["live_marker"], store.calls["network"]) == (2, 1)
    world.post(A, world.a[2], [b.session(days=6)], tokens.writer_a)
    world.project()
    assert reader.network().digest != first.digest
    assert store.calls["network"] == 2


def test_the_cache_is_bounded_in_bytes():
    cache = ReadCache(max_bytes=800)
    marker = Marker(1, 5, 0, 0)
    from projections.reading import Read

    for n in range(10):
        cache.put(("clinic", str(n)), marker, Read.of(5, "x" * 90))
    kept = [n for n in range(10) if cache.get(("clinic", str(n)), marker) is not None]
    assert kept == [2, 3, 4, 5, 6, 7, 8, 9]
    assert cache.get(("clinic", "9"), Marker(1, 6, 0, 0)) is None  # the marker moved
    cache.put(("page", str(uuid.uuid4())), marker, Read.of(5, "y" * 200))  # over an eighth
    assert len(cache._reads) == 8
