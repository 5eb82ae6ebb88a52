"""The benchmark's arithmetic (``bench/report.py``): where a read goes, and issue 11's verdicts.

Synthetic figures only: ``make bench`` measures, these tests check what it concludes.
"""

from __future__ import annotations

from typing import Any

import pytest

from bench import report

pytestmark = pytest.mark.unit


def _row(cpu: float, p50: float, rps: float = 100.0, x_off: float = 1.0) -> dict[str, Any]:
    return {
        "cpu_us": cpu,
        "p50_ms": p50,
        "rps": rps,
        "x_off": x_off,
        "load_p50_ms": 10.0,
        "load_p99_ms": 20.0,
        "cpu_us_by": {"gateway": cpu / 2, "users": cpu / 4, "db": cpu / 4},
    }


PARTS = {
    "bare": _row(100, 0.1, rps=10_000),
    "aiosqlite": _row(150, 0.15),
    "sqlalchemy": _row(900, 0.5),
    "httpx": _row(1100, 1.0),
    "three bare hops": _row(4000, 3.0),
}
READ = {"cello off": _row(5000, 4.0, rps=250), "cello s=1.0": _row(6000, 5.0, x_off=0.8)}


@pytest.mark.parametrize("key", ["cpu_us", "p50_ms"])
def test_the_parts_with_a_share_add_up_to_the_traced_read(key: str) -> None:
    parts = report.chain_parts(PARTS, READ, key)
    assert sum(value for _, value, additive in parts if additive) == pytest.approx(
        READ["cello s=1.0"][key]
    )
    floor = [value for name, value, _ in parts if name.startswith("three bare hops")]
    assert floor == [PARTS["three bare hops"][key]]


def test_a_missed_target_names_the_largest_part_of_the_untraced_read() -> None:
    rows = {row["label"]: row for row in report.ratio_rows(PARTS, READ)}
    cpu = rows["chain CPU per read / echo's"]
    # 5000 / 100 = 50x against 0.75 x issue 11's 30x; httpx: 2 x (1100 - 100) of 5000.
    assert (cpu["now"], cpu["verdict"]) == (50.0, "missed")
    assert cpu["rest"] == (
        "largest part: httpx call x2 (httpx minus bare), 40 % of the untraced read"
    )
    assert rows["untraced chain req/s / echo's"]["verdict"] == "met"  # 0.025x
    assert rows["chain p99 / p50, both at 16 connections"]["verdict"] == "met"  # 2x
    assert rows["traced (1.0) chain req/s / untraced"]["verdict"] == "met"  # 0.8x


def test_the_cpu_target_is_a_quarter_below_the_chain_before_when_it_ran() -> None:
    read = {**READ, "before off": _row(8000, 6.0, rps=200)}
    cpu = next(r for r in report.ratio_rows(PARTS, read) if r["label"].startswith("chain CPU"))
    assert (cpu["target"], cpu["before"], cpu["verdict"]) == ("≤ 60x", 80.0, "met")


def test_a_missed_traced_target_says_what_tracing_adds_per_service() -> None:
    read = {**READ, "cello s=1.0": {**READ["cello s=1.0"], "x_off": 0.5}}
    traced = next(r for r in report.ratio_rows(PARTS, read) if r["label"].startswith("traced"))
    assert traced["verdict"] == "missed"
    assert traced["rest"] == "tracing adds gateway +500 µs CPU, users +250 µs CPU, db +250 µs CPU"
