"""No value a user sent reaches a span: a canary goes through every db route, on SQLite
and on PostgreSQL, valid and refused, and is then looked for in everything exported
(attributes, events and their attributes, status messages).

PostgreSQL's own error text is the classic leak: its unique violation says
``DETAIL: Key (email)=(...) already exists``, and the SQL span's status would carry it.
Values in query strings are the edge's concern (``http.url``), not sent here.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from faulttools import Chain

from support.databases import make_database
from support.otlp import OtlpReceiver
from support.traces import poll_until, trace_id_of


@pytest.fixture
def chain(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[Chain, OtlpReceiver]]:
    with OtlpReceiver() as receiver:
        chain = Chain(
            tmp_path, receiver.endpoint, database=make_database(request, backend, tmp_path)
        )
        chain.start()
        try:
            yield chain, receiver
        finally:
            chain.stop()


def test_no_value_sent_through_db_reaches_any_span(chain: tuple[Chain, OtlpReceiver]) -> None:
    services, receiver = chain
    canary = f"canary{uuid.uuid4().hex[:12]}"
    email = f"{canary}@example.com"
    gateway, db = services.url("gateway"), services.url("db")
    answers: list[httpx.Response] = []
    with httpx.Client(timeout=10) as client:
        created = client.post(f"{gateway}/api/users", json={"name": canary, "email": email})
        assert created.status_code == 201, created.text
        user_id = created.json()["id"]
        answers.append(created)
        sent = [
            ("POST", f"{gateway}/api/users", {"name": canary, "email": email}),  # taken: 409
            ("POST", f"{db}/users", {"name": canary, "email": email}),  # db's own 409
            ("POST", f"{db}/users", {"name": canary * 10, "email": f"x{email}"}),  # too long
            ("POST", f"{db}/users", {"name": [canary], "email": email}),  # not a string
            ("POST", f"{db}/users", {"name": f"{canary}\u0000", "email": f"nul.{email}"}),
            ("POST", f"{db}/users", {"name": canary, "email": email, canary: canary}),
            ("GET", f"{db}/users/{user_id}", None),
            ("GET", f"{gateway}/api/users/{user_id}", None),
            ("GET", f"{db}/users", None),
            ("DELETE", f"{db}/users/{user_id}", None),
            ("DELETE", f"{db}/users/{user_id}", None),  # gone: 404
        ]
        for method, url, body in sent:
            answers.append(client.request(method, url, json=body))
    assert answers[1].status_code == answers[2].status_code == 409
    trace_ids = {trace_id_of(answer.headers["traceparent"]) for answer in answers}
    poll_until(
        receiver.trace_ids, lambda got: trace_ids <= got, timeout=15, what="every trace exported"
    )
    # The INSERT that failed is among them, with its ERROR status (and reduced text).
    inserts = [s for s in receiver.spans() if s.kind == "CLIENT" and s.name.startswith("INSERT")]
    assert any(span.error for span in inserts)
    exported = receiver.exported_text().lower()
    assert canary not in exported
