"""A Ray cluster to run on: a local one started here (``ray start --head --block`` on
127.0.0.1, stopped by its process id), or an existing one joined by address.

A step joins the cluster as a Ray *job* for the duration of one hop (:func:`connected`), with
the workers' environment in the job's ``runtime_env``; the job ends when the hop does, so each
step's workers see that step's environment and nothing lingers in the step's process.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

DEFAULT_OBJECT_STORE_BYTES = 100 * 1024 * 1024
"""Object store of a local cluster (Ray's minimum is about 75 MB)."""


class RayUnavailableError(RuntimeError):
    """The ``ray`` engine was chosen but Ray is not installed (``pip install '.[ray]'``)."""


QUIET_RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_DATA_USAGE_DISABLED": "1"}
"""Ray's telemetry off in the driver. Ray Data's usage collector otherwise starts a thread
that polls Prometheus (``localhost:9090``) every few seconds until the process exits, through
whatever ``http_proxy`` the process has at the time: during a later download in the same
process, that is the download guard, which refuses it and counts it as this download's."""


def require_ray() -> Any:
    """The ``ray`` module (with :data:`QUIET_RAY_ENV` in this process's environment), or a
    clear error naming the extra to install."""
    os.environ.update(QUIET_RAY_ENV)
    try:
        import ray
    except ModuleNotFoundError as exc:
        raise RayUnavailableError(
            "the ray engine needs Ray: pip install 'crawl2diffusion[ray]'"
        ) from exc
    return ray


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LocalRayCluster:
    """A one-node Ray cluster on loopback, as a context manager; ``address`` is its GCS.

    It runs ``ray start --head --block`` in a process group of its own and ends that group
    on exit (never ``ray stop``, which would stop every Ray cluster on the machine)."""

    def __init__(
        self,
        num_cpus: int = 2,
        num_gpus: int | None = None,
        object_store_bytes: int = DEFAULT_OBJECT_STORE_BYTES,
        start_timeout_s: float = 60.0,
        env: dict[str, str] | None = None,
    ) -> None:
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus
        self.object_store_bytes = object_store_bytes
        self.start_timeout_s = start_timeout_s
        self.env = env or {}
        self.address = ""
        self.startup_s = 0.0
        self._proc: subprocess.Popen | None = None
        self._temp: str | None = None

    def __enter__(self) -> LocalRayCluster:
        require_ray()
        started = time.perf_counter()
        port = _free_port()
        # a short root: Ray's unix socket paths must stay under 107 bytes
        self._temp = tempfile.mkdtemp(prefix="c2d-ray-", dir="/tmp")
        ray_cli = Path(sys.executable).with_name("ray")
        args = [
            str(ray_cli) if ray_cli.exists() else "ray",
            "start", "--head", "--block",
            "--node-ip-address=127.0.0.1", f"--port={port}",
            f"--num-cpus={self.num_cpus}",
            f"--object-store-memory={self.object_store_bytes}",
            "--include-dashboard=false", "--disable-usage-stats",
            f"--temp-dir={self._temp}",
        ]  # fmt: skip
        if self.num_gpus is not None:
            args.append(f"--num-gpus={self.num_gpus}")
        env = {**os.environ, **self.env, **QUIET_RAY_ENV}
        self._proc = subprocess.Popen(
            args,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self.address = f"127.0.0.1:{port}"
        try:
            self._wait_ready()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        self.startup_s = time.perf_counter() - started
        return self

    def _wait_ready(self) -> None:
        """Wait (up to ``start_timeout_s``) until a driver can join and sees every CPU."""
        ray = require_ray()
        deadline = time.monotonic() + self.start_timeout_s
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
                raise RuntimeError(f"ray start exited with {self._proc.returncode}: {err[-2000:]}")
            try:
                ray.init(
                    address=self.address,
                    logging_level="ERROR",
                    log_to_driver=False,
                    _node_ip_address="127.0.0.1",
                )
                try:
                    if ray.cluster_resources().get("CPU", 0) >= self.num_cpus:
                        return
                finally:
                    ray.shutdown()
            except (ConnectionError, RuntimeError) as exc:
                last = exc
            time.sleep(0.5)
        raise TimeoutError(
            f"the local Ray cluster at {self.address} was not ready within "
            f"{self.start_timeout_s:.0f} s (last error: {last})"
        )

    def __exit__(self, *exc: object) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        if proc is not None and proc.stderr is not None:
            proc.stderr.close()
        if self._temp:
            shutil.rmtree(self._temp, ignore_errors=True)
            self._temp = None


@contextmanager
def connected(address: str, env_vars: dict[str, str]) -> Iterator[Any]:
    """Join the cluster at ``address`` as a job whose workers get ``env_vars``; leave on exit.

    ``address``: ``host:port`` of a cluster's GCS, ``ray://host:port`` (Ray Client), or
    ``auto``; empty starts a throwaway local cluster for this job alone (slow: prefer
    :class:`LocalRayCluster` once per process). Ray must not be initialized already in this
    process: a job's ``runtime_env`` is fixed when it connects."""
    ray = require_ray()
    if ray.is_initialized():
        raise RuntimeError(
            "Ray is already initialized in this process; the ray engine connects once per hop "
            "with the hop's worker environment (call ray.shutdown() first)"
        )
    ray.init(
        address=address or None,
        runtime_env={"env_vars": env_vars},
        logging_level="ERROR",
        log_to_driver=False,
        **_local_args(address),
    )
    try:
        yield ray
    finally:
        ray.shutdown()


def _local_args(address: str) -> dict[str, Any]:
    """ray.init arguments for a cluster on this machine's loopback (or a new local one)."""
    if not address:
        return {"include_dashboard": False, "_node_ip_address": "127.0.0.1"}
    host = address.removeprefix("ray://").rsplit(":", 1)[0]
    return {"_node_ip_address": "127.0.0.1"} if host in ("127.0.0.1", "localhost") else {}
