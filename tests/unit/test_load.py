"""``make load``: percentiles, the mix of requests, error counting and its guard rails."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from tools import load
from tools.load import Load, Stats, percentile, summary


def test_percentile_is_nearest_rank() -> None:
    values = [float(n) for n in range(100, 0, -1)]  # 1..100, unsorted

    assert percentile(values, 50) == 50.0
    assert percentile(values, 90) == 90.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) == 0.0


def gateway(*, fail_reads: bool = False) -> httpx.MockTransport:
    """A fake gateway: creates get ids, reads and lists succeed, the missing user is 404."""
    created = 0

    def answer(request: httpx.Request) -> httpx.Response:
        nonlocal created
        assert request.headers["x-demo-session"].startswith("load-")
        path = request.url.path
        if request.method == "POST":
            created += 1
            assert json.loads(request.content)["email"].endswith("@example.com")
            return httpx.Response(201, json={"id": created})
        if path == "/api/users/987654321":
            return httpx.Response(404, json={"status": 404})
        if path.startswith("/api/users/") and fail_reads:
            return httpx.Response(503, json={"status": 503})
        return httpx.Response(200, json={})

    return httpx.MockTransport(answer)


def run(transport: httpx.MockTransport, rate: float, duration: float) -> Stats:
    async def go() -> Stats:
        async with httpx.AsyncClient(base_url="http://gw", transport=transport) as http:
            return await Load(http, rate, duration).run()

    return asyncio.run(go())


def test_a_run_sends_rate_times_duration_requests_of_every_kind() -> None:
    stats = run(gateway(), rate=400, duration=0.5)

    assert stats.sent == 200
    assert stats.skipped == 0
    assert sum(stats.statuses.values()) == 200
    assert set(stats.statuses) == {200, 201, 404}
    assert not stats.errors  # the 404s are the expected ones
    assert len(stats.latencies_ms) == 200


def test_unexpected_answers_are_errors_by_status() -> None:
    stats = run(gateway(fail_reads=True), rate=400, duration=0.5)

    assert stats.errors["503"] == stats.statuses[503] > 0
    text = summary(stats, 0.6)
    assert f"errors     {stats.errors['503']} (503: {stats.errors['503']})" in text
    assert "p50" in text
    assert "p99" in text


def test_transport_failures_are_counted_not_raised() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    stats = run(httpx.MockTransport(refuse), rate=100, duration=0.1)

    assert stats.errors == {"transport": 10}
    assert stats.answered == 10


@pytest.mark.parametrize("url", ["http://10.0.0.8:8000", "http://example.com"])
def test_only_loopback_is_a_target(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], url: str
) -> None:
    monkeypatch.setenv("GATEWAY_URL", url)

    assert load.main(["--duration", "1"]) == 2
    assert "only targets this machine" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--rate", "0"], ["--duration", "0"], ["--duration", "99999"]])
def test_rate_and_duration_are_bounded(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        load.main(argv)
    assert stopped.value.code == 2
