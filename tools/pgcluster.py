"""A throwaway PostgreSQL cluster: a temporary directory, a loopback port, gone afterwards.

The test suite runs db against it (``tests/conftest.py``), and ``make up DB=postgres``
runs it in the foreground beside the native stack::

    python tools/pgcluster.py serve --port 5432

prints the ``DATABASE_URL`` once the server accepts connections (``ready`` checks
that from outside) and removes the cluster on SIGTERM or Ctrl-C. In Python::

    with Cluster() as cluster:
        url = cluster.create_database("users")  # postgresql+asyncpg://cello@127.0.0.1:.../users

The server binaries (``initdb``, ``pg_ctl``, ``postgres``) come from ``PATH`` or
Debian's ``/usr/lib/postgresql/<version>/bin``; :func:`ensure_postgres` installs
Debian's ``postgresql`` package when they are missing and it runs as root.
PostgreSQL refuses to run as root, so root runs the server as the ``postgres``
account (or ``nobody``). Authentication is ``trust`` on 127.0.0.1 only: a cluster
for one test run or one demo, never for data that matters.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any, Self

import asyncpg

from tools.ports import free_port

#: The superuser the cluster is created with; the URL's user name.
USER = "cello"


class PostgresMissingError(RuntimeError):
    """The PostgreSQL server binaries are not installed and cannot be installed here."""


def find_bindir() -> Path | None:
    """The directory holding ``initdb``, ``pg_ctl`` and ``postgres``, if any."""
    on_path = shutil.which("initdb")
    if on_path is not None:
        return Path(on_path).resolve().parent
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda path: int(path.parts[-3]) if path.parts[-3].isdigit() else 0,
    )
    return versions[-1].parent if versions else None


def ensure_postgres(timeout: float = 1200) -> Path:
    """The server binaries' directory; installs Debian's ``postgresql`` as root if needed.

    Raises:
        PostgresMissingError: not installed, and this process cannot install it.
    """
    bindir = find_bindir()
    if bindir is not None:
        return bindir
    command = "apt-get install -y postgresql"
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise PostgresMissingError(f"no PostgreSQL server binaries (initdb); run: sudo {command}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for args in (
        ["apt-get", "update"],
        ["apt-get", "install", "-y", "--no-install-recommends", "postgresql"],
    ):
        subprocess.run(args, check=True, env=env, timeout=timeout, stdout=subprocess.DEVNULL)
    bindir = find_bindir()
    if bindir is None:
        raise PostgresMissingError(f"{command} ran, but initdb is still missing")
    return bindir


def _server_account() -> str | None:
    """Who runs the server: ``None`` (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name).pw_name
        except KeyError:
            continue
    raise PostgresMissingError("running as root, and there is no postgres or nobody account")


class Cluster:
    """One PostgreSQL cluster in a temporary directory, listening on 127.0.0.1 only.

    Args:
        port: the port to listen on; a free one by default.
        bindir: the server binaries; found (or installed) by :func:`ensure_postgres`.
    """

    def __init__(self, port: int | None = None, bindir: Path | None = None) -> None:
        self.bindir = bindir or ensure_postgres()
        self.port = port or free_port()
        self._account = _server_account()
        self.root = Path(tempfile.mkdtemp(prefix="cello-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        if self._account is not None:
            entry = pwd.getpwnam(self._account)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)

    def url(self, database: str = "postgres") -> str:
        """The SQLAlchemy URL of ``database`` in this cluster (asyncpg driver)."""
        return f"postgresql+asyncpg://{USER}@127.0.0.1:{self.port}/{database}"

    def _run(self, tool: str, *args: str, timeout: float = 120) -> None:
        done = subprocess.run(
            [str(self.bindir / tool), *args],
            user=self._account,
            cwd=self.root,
            env={**os.environ, "LC_ALL": "C", "PGTZ": "UTC"},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(
                f"{tool} {' '.join(args)} failed (exit {done.returncode}):\n"
                f"{done.stdout}{done.stderr}{log}"
            )

    def start(self) -> None:
        """Create the cluster on first use, then start the server and wait until it is up."""
        if not self.data.exists():
            self._run(
                "initdb", "-D", str(self.data), "-U", USER, "--auth=trust",
                "-E", "UTF8", "--locale=C", "--no-sync",
            )  # fmt: skip
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root}"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: ``fast`` (roll back, checkpoint) or ``immediate`` (as in a crash)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def create_database(self, name: str) -> str:
        """Create an empty database; its URL."""
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", USER, name)
        return self.url(name)

    def server_pids(self) -> list[int]:
        """The postmaster and every process it started (backends, checkpointer, ...)."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        pids = [postmaster]
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError):
                continue  # exited while we looked
            if int(fields[1]) == postmaster:  # fields[1] is the parent pid
                pids.append(int(stat.parent.name))
        return pids

    def signal(self, signum: signal.Signals) -> None:
        """Send ``signum`` to every server process (SIGSTOP and SIGCONT make it hang)."""
        for pid in self.server_pids():
            with contextlib.suppress(ProcessLookupError):  # exited meanwhile
                os.kill(pid, signum)

    def remove(self) -> None:
        """Stop the server if it runs and delete the cluster's directory."""
        if (self.data / "postmaster.pid").exists():
            # The server may be shutting down by itself (SIGTERM to its process group):
            # then its pid file goes away while we look, and pg_ctl finds nothing to stop.
            with contextlib.suppress(FileNotFoundError, RuntimeError):
                self.signal(signal.SIGCONT)  # a stopped server cannot shut down
                self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        self.remove()


def ready(port: int, database: str) -> bool:
    """Whether a server on ``127.0.0.1:port`` lets :data:`USER` into ``database``."""

    async def probe() -> None:
        connection = await asyncpg.connect(
            host="127.0.0.1", port=port, user=USER, database=database, timeout=2
        )
        await connection.close()

    try:
        asyncio.run(probe())
    except (OSError, asyncpg.PostgresError):
        return False
    return True


def serve(port: int, database: str) -> int:
    """Run a cluster until SIGTERM or SIGINT, then remove it; the exit status."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    with Cluster(port) as cluster:
        url = cluster.create_database(database)
        print(f"PostgreSQL {cluster.bindir.parent.name} in {cluster.root}", flush=True)
        print(f"DATABASE_URL={url}", flush=True)
        stop.wait()
        print("stopping; removing the cluster", flush=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("serve", help="run a throwaway cluster until SIGTERM or Ctrl-C")
    check = commands.add_parser("ready", help="exit 0 when a served cluster takes connections")
    for command in (run, check):
        command.add_argument("--port", type=int, default=5432, help="port on 127.0.0.1 (5432)")
        command.add_argument("--database", default="users", help="the database (users)")
    commands.add_parser("bindir", help="print the server binaries' directory (installs as root)")
    args = parser.parse_args()
    try:
        if args.command == "bindir":
            print(ensure_postgres())
            return 0
        if args.command == "ready":
            return 0 if ready(args.port, args.database) else 1
        return serve(args.port, args.database)
    except (PostgresMissingError, RuntimeError) as exc:
        print(f"pgcluster: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
