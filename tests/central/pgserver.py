"""A throwaway PostgreSQL server in a temporary directory (tests and bench/bench_central_ingest.py).

initdb and pg_ctl come from /usr/lib/postgresql/<version>/bin (Debian's layout, newest
first) or PATH. PostgreSQL refuses to run as root, so as root (CI, containers) the
server runs as the ``postgres`` user (runuser or setpriv) in a directory it owns. It
listens only on a Unix socket in that directory (no TCP) and trusts local connections:
nothing else on the machine can reach it, and it is removed at the end.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path


class ServerUnavailable(Exception):
    """No PostgreSQL server can be started here; the message says why."""


def _binaries() -> tuple[str, str]:
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
    )
    for directory in reversed(versions):
        initdb, pg_ctl = Path(directory) / "initdb", Path(directory) / "pg_ctl"
        if initdb.exists() and pg_ctl.exists():
            return str(initdb), str(pg_ctl)
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl:
        return initdb, pg_ctl
    raise ServerUnavailable(
        "no PostgreSQL server binaries (initdb, pg_ctl) in /usr/lib/postgresql/*/bin or PATH; "
        "install the Debian package postgresql (.ci/run does)"
    )


def _as_server_user() -> tuple[list[str], int | None]:
    """The command prefix that runs the server's tools as a user PostgreSQL accepts, and its uid."""
    if os.geteuid() != 0:
        return [], None
    try:
        account = pwd.getpwnam("postgres")
    except KeyError:
        raise ServerUnavailable("running as root and there is no 'postgres' user to run the server as") from None
    if shutil.which("runuser"):
        return ["runuser", "-u", "postgres", "--"], account.pw_uid
    if shutil.which("setpriv"):
        return [
            "setpriv",
            f"--reuid={account.pw_uid}",
            f"--regid={account.pw_gid}",
            "--init-groups",
            "--",
        ], account.pw_uid
    raise ServerUnavailable("running as root without runuser or setpriv to start PostgreSQL as 'postgres'")


class TemporaryPostgres:
    """``start()``, then ``url(dbname)`` for connection strings, ``stop()`` to remove it all."""

    def __init__(self, settings: dict[str, str] | None = None) -> None:
        self.settings = settings or {}
        self.directory: Path | None = None
        self._prefix: list[str] = []
        self._pg_ctl = ""

    def _run(self, argv: list[str], what: str) -> None:
        result = subprocess.run(self._prefix + argv, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            raise ServerUnavailable(f"{what} failed: {' | '.join(detail)}")

    def start(self) -> TemporaryPostgres:
        initdb, self._pg_ctl = _binaries()
        self._prefix, uid = _as_server_user()
        self.directory = Path(
            tempfile.mkdtemp(prefix="tracekit-pg-", dir="/tmp")
        )  # short: a socket path has ~100 bytes
        if uid is not None:
            os.chown(self.directory, uid, -1)
        os.chmod(self.directory, 0o700)
        data = self.directory / "data"
        self._run(
            [initdb, "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync"],
            "initdb",
        )
        options = {"listen_addresses": "''", "unix_socket_directories": f"'{self.directory}'", **self.settings}
        flags = " ".join(f"-c {key}={value}" for key, value in options.items())
        self._run(
            [
                self._pg_ctl,
                "-D",
                str(data),
                "-l",
                str(self.directory / "server.log"),
                "-o",
                flags,
                "-w",
                "-t",
                "60",
                "start",
            ],
            "pg_ctl start",
        )
        return self

    def url(self, dbname: str = "postgres") -> str:
        return f"host={self.directory} dbname={dbname} user=postgres"

    def stop(self) -> None:
        if self.directory is None:
            return
        try:
            self._run(
                [self._pg_ctl, "-D", str(self.directory / "data"), "-m", "immediate", "-w", "stop"], "pg_ctl stop"
            )
        except ServerUnavailable:
            pass
        shutil.rmtree(self.directory, ignore_errors=True)
        self.directory = None
