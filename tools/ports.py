"""Free TCP ports on loopback, for the processes the tools, the tests and the benchmark start.

The kernel picks each port (``bind`` to port 0) among those no socket is bound to, so
callers never race over a guessed number nor land on a running server's port (where
Cello, binding with ``SO_REUSEPORT``, would start without error and silently share it).
The port is free when handed out; the caller's process should bind it soon after.
"""

from __future__ import annotations

import socket


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports on 127.0.0.1 that no socket is bound to right now.

    They are held together while chosen, so they differ, and released on return.
    """
    sockets = [socket.socket() for _ in range(count)]
    try:
        for probe in sockets:
            probe.bind(("127.0.0.1", 0))
        return [int(probe.getsockname()[1]) for probe in sockets]
    finally:
        for probe in sockets:
            probe.close()


def free_port() -> int:
    """One port on 127.0.0.1 that no socket is bound to right now."""
    (port,) = free_ports(1)
    return port
