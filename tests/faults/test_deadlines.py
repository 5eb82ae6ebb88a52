"""The caller's deadline travels with each call (``X-Request-Deadline``): a service
does not start work nobody waits for, so a 504 for a write does not hide a write
that was stored after all.
"""

from __future__ import annotations

import json
import signal
import socket
import time
import uuid

import httpx
from faulttools import ChainFactory, Figures

from support.otlp import OtlpReceiver
from support.traces import poll_until

DB_TIMEOUT = 2.0  # users' default wait for db


def test_a_write_its_caller_gave_up_on_is_not_performed(
    make_chain: ChainFactory, receiver: OtlpReceiver, figures: Figures
) -> None:
    chain = make_chain(receiver.endpoint)
    email = f"{uuid.uuid4().hex[:12]}@example.com"
    user = {"name": "Ada", "email": email}
    chain.signal("db", signal.SIGSTOP)  # takes the request into its socket, does nothing
    try:
        answer = httpx.post(f"{chain.url()}/api/users", json=user, timeout=10)
    finally:
        chain.signal("db", signal.SIGCONT)
    assert answer.status_code == 504, answer.text
    assert answer.headers["content-type"] == "application/problem+json"

    # db, resumed, finds a request nobody waits for (if its caller's connection is
    # still open at all): nothing is stored, and a retry is a plain create.
    poll_until(
        lambda: httpx.get(f"{chain.url('db')}/health", timeout=1).status_code,
        lambda status: status == 200,
        timeout=10,
        what="db answering again",
    )
    assert email not in chain.database.emails()
    retried = httpx.post(f"{chain.url()}/api/users", json=user, timeout=10)
    assert retried.status_code == 201, retried.text  # not 409: the first was not stored
    figures(f"db frozen: POST 504 after users' {DB_TIMEOUT:g} s; on resume not stored, retry 201")


def test_db_does_not_start_a_write_whose_deadline_passed_while_it_waited(
    make_chain: ChainFactory, receiver: OtlpReceiver
) -> None:
    # The caller keeps its connection open (whatever its HTTP client does on a
    # timeout): only the deadline tells db that nobody waits for this write any more.
    chain = make_chain(receiver.endpoint)
    email = f"{uuid.uuid4().hex[:12]}@example.com"
    body = json.dumps({"name": "Ada", "email": email}).encode()
    port = chain.services["db"].port
    chain.signal("db", signal.SIGSTOP)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            deadline = int((time.time() + 0.3) * 1000)
            conn.sendall(
                b"POST /users HTTP/1.1\r\nHost: db\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\nX-Request-Deadline: {deadline}\r\n".encode()
                + b"Connection: close\r\n\r\n"
                + body
            )
            time.sleep(1)  # db is frozen: the deadline passes while the request waits
            chain.signal("db", signal.SIGCONT)
            head = conn.recv(65536).split(b"\r\n", 1)[0]
    finally:
        chain.signal("db", signal.SIGCONT)
    assert head.split()[1] == b"504", head
    assert email not in chain.database.emails()


def test_a_call_past_its_deadline_is_refused_at_once(
    make_chain: ChainFactory, receiver: OtlpReceiver
) -> None:
    chain = make_chain(receiver.endpoint)
    passed = {"X-Request-Deadline": "1000"}  # 1970: long gone
    for name, path in (("gateway", "/api/users/1"), ("users", "/users/1"), ("db", "/users/1")):
        answer = httpx.get(f"{chain.url(name)}{path}", headers=passed)
        assert answer.status_code == 504, (name, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
    unreadable = {"X-Request-Deadline": "soon"}  # ignored: a deadline only ever shortens
    assert httpx.get(f"{chain.url()}/api/users", headers=unreadable).status_code == 200
