"""db's demo fault scenarios: off by default, switched by DEMO_SCENARIOS, chosen by baggage."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from opentelemetry import baggage
from opentelemetry import context as otel_context

from cello_problem import HTTPError
from cello_settings import ConfigError, env_flag
from db.database import UserStore, create_engine, create_schema
from db.scenarios import FLAKY_DB, N_PLUS_ONE, SLOW_DB, DemoSettings, Scenarios

DEMO_VARIABLES = ("DEMO_SCENARIOS", "DEMO_DB_LATENCY_MS", "DEMO_FAILURE_RATE")


@pytest.fixture(autouse=True)
def _no_demo_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in DEMO_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@contextmanager
def scenario_baggage(value: str | None) -> Iterator[None]:
    """The current context carries ``demo.scenario=value``, as in a request's handler."""
    context = otel_context.get_current()
    if value is not None:
        context = baggage.set_baggage("demo.scenario", value, context)
    token = otel_context.attach(context)
    try:
        yield
    finally:
        otel_context.detach(token)


class SpanRecorder:
    """Stands in for ``internal_span``: records the spans a scenario opens."""

    def __init__(self) -> None:
        self.opened: list[tuple[str, dict[str, object]]] = []

    @contextmanager
    def __call__(self, name: str, attributes: object) -> Iterator[None]:
        assert isinstance(attributes, dict)
        self.opened.append((name, dict(attributes)))
        yield


def scenarios(recorder: SpanRecorder, **settings: object) -> Scenarios:
    return Scenarios(DemoSettings(**settings), random.Random(7), span=recorder)  # type: ignore[arg-type]


# -- settings ---------------------------------------------------------------------------


def test_settings_default_to_off() -> None:
    assert DemoSettings.from_env() == DemoSettings(
        enabled=False, db_latency_ms=300, failure_rate=0.5
    )


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMO_SCENARIOS", "1")
    monkeypatch.setenv("DEMO_DB_LATENCY_MS", "1200")
    monkeypatch.setenv("DEMO_FAILURE_RATE", "0.25")

    assert DemoSettings.from_env() == DemoSettings(
        enabled=True, db_latency_ms=1200, failure_rate=0.25
    )


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DEMO_SCENARIOS", "maybe", "must be 1 or 0"),
        ("DEMO_DB_LATENCY_MS", "-5", "between 0 and 30000"),
        ("DEMO_FAILURE_RATE", "1.5", "between 0.0 and 1.0"),
    ],
)
def test_bad_settings_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=f"{name}=.*{message}"):
        DemoSettings.from_env()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1", True), ("true", True), ("YES", True), ("on", True), ("0", False), ("off", False)],
)
def test_env_flag_spellings(monkeypatch: pytest.MonkeyPatch, raw: str, expected: bool) -> None:
    monkeypatch.setenv("DEMO_SCENARIOS", raw)
    assert env_flag("DEMO_SCENARIOS", not expected) is expected


# -- switched off: baggage is ignored ---------------------------------------------------


@pytest.mark.parametrize("name", [SLOW_DB, FLAKY_DB, N_PLUS_ONE])
def test_off_by_default_every_scenario_is_ignored(name: str) -> None:
    recorder = SpanRecorder()
    off = Scenarios(DemoSettings.from_env(), span=recorder)  # type: ignore[arg-type]

    with scenario_baggage(name):
        assert off.requested() is None
        asyncio.run(off.disturb())  # no latency, no 503 even at failure_rate 0.5

    assert recorder.opened == []


def test_off_flaky_db_never_fails_even_at_rate_one() -> None:
    recorder = SpanRecorder()
    off = scenarios(recorder, enabled=False, failure_rate=1.0)

    with scenario_baggage(FLAKY_DB):
        for _ in range(20):
            asyncio.run(off.disturb())

    assert recorder.opened == []


# -- switched on -------------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, "", "SLOW-DB", "slow-db,flaky-db", "drop-tables"])
def test_on_but_no_known_scenario_requested(value: str | None) -> None:
    recorder = SpanRecorder()
    on = scenarios(recorder, enabled=True, failure_rate=1.0)

    with scenario_baggage(value):
        assert on.requested() is None
        asyncio.run(on.disturb())

    assert recorder.opened == []


def test_slow_db_waits_inside_its_span() -> None:
    recorder = SpanRecorder()
    on = scenarios(recorder, enabled=True, db_latency_ms=30)

    with scenario_baggage(SLOW_DB):
        started = time.monotonic()
        asyncio.run(on.disturb())
        elapsed = time.monotonic() - started

    assert elapsed >= 0.03
    assert recorder.opened == [
        ("demo: injected latency", {"demo.scenario": "slow-db", "demo.latency_ms": 30})
    ]


def test_flaky_db_fails_with_a_503_inside_its_span() -> None:
    recorder = SpanRecorder()
    on = scenarios(recorder, enabled=True, failure_rate=1.0)

    with scenario_baggage(FLAKY_DB), pytest.raises(HTTPError) as raised:
        asyncio.run(on.disturb())

    assert raised.value.status == 503
    assert "flaky-db" in (raised.value.detail or "")
    assert recorder.opened == [
        ("demo: injected failure", {"demo.scenario": "flaky-db", "demo.failure_rate": 1.0})
    ]


def test_flaky_db_fails_about_the_configured_share() -> None:
    on = scenarios(SpanRecorder(), enabled=True, failure_rate=0.5)
    failures = 0
    with scenario_baggage(FLAKY_DB):
        for _ in range(400):
            try:
                asyncio.run(on.disturb())
            except HTTPError:
                failures += 1

    assert 140 <= failures <= 260  # seeded, so stable; far from 0 and from 400


def test_n_plus_one_is_requested_but_disturbs_nothing() -> None:
    recorder = SpanRecorder()
    on = scenarios(recorder, enabled=True)

    with scenario_baggage(N_PLUS_ONE):
        assert on.requested() == N_PLUS_ONE
        asyncio.run(on.disturb())

    assert recorder.opened == []


# -- the N+1 listing returns the same page ------------------------------------------------


def test_list_one_by_one_returns_the_same_page_as_list(tmp_path: Path) -> None:
    async def pages() -> tuple[dict[str, object], ...]:
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'users.db'}")
        try:
            await create_schema(engine)
            store = UserStore(engine)
            for n in range(5):
                await store.create(f"user {n}", f"u{n}@example.com")
            await store.delete(2)
            return (
                await store.list(3, 1),
                await store.list_one_by_one(3, 1),
                await store.list_one_by_one(10, 10),
            )
        finally:
            await engine.dispose()

    plain, one_by_one, beyond = asyncio.run(pages())

    assert one_by_one == plain
    assert [user["id"] for user in plain["items"]] == [3, 4, 5]  # type: ignore[attr-defined]
    assert plain["total"] == 4
    assert beyond == {"items": [], "limit": 10, "offset": 10, "total": 4}
