"""The services' metrics and log records, exported over OTLP by the real processes."""

from __future__ import annotations

import uuid

import httpx

from support.chain import DB, GATEWAY, USERS
from support.otlp import OtlpReceiver
from support.traces import poll_until

SERVICES = (GATEWAY, USERS, DB)
EDGE = "http.server.request.duration"


def test_each_service_exports_its_metrics_and_log_records(
    gateway_url: str, receiver: OtlpReceiver
) -> None:
    email = f"{uuid.uuid4().hex[:12]}@example.com"
    response = httpx.post(f"{gateway_url}/api/users", json={"name": "Ada", "email": email})
    assert response.status_code == 201, response.text

    names = poll_until(
        lambda: {service: receiver.metric_names(service) for service in SERVICES},
        lambda got: all(EDGE in got[service] for service in SERVICES),
        timeout=30,
        what=f"{EDGE} from {', '.join(SERVICES)}",
    )
    # The contrib instrumentations' own: httpx's client duration, SQLAlchemy's pool.
    assert any(name.startswith("http.client") for name in names[GATEWAY]), names[GATEWAY]
    assert any(name.startswith("http.client") for name in names[USERS]), names[USERS]
    assert any(name.startswith("db.client.connection") for name in names[DB]), names[DB]

    bodies = poll_until(
        lambda: {service: receiver.log_bodies(service) for service in SERVICES},
        lambda got: (
            "POST /api/users 201" in got[GATEWAY]
            and "POST /users 201" in got[USERS]
            and "POST /users 201" in got[DB]
        ),
        timeout=30,
        what="the access log records of the three services",
    )
    assert not [body for lines in bodies.values() for body in lines if email in body]
