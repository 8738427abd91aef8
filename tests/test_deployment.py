"""A real deployment on loopback: dagster-webserver + dagster-daemon with a temporary
DAGSTER_HOME. The daemon ticks the new-crawl sensor and launches its run; a partitioned
materialization is submitted through the GraphQL API and its checks and metadata are read."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from dagster import AssetCheckKey, AssetKey, DagsterInstance, DagsterRunStatus, RunsFilter

from pipeline.lake.tables import TableName
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


BUSY_MACHINE_TIMEOUT = 600.0
"""Seconds a wait allows: loading the code location alone took 57 s on a busy 2-core machine."""


def wait_for(predicate, timeout: float, what: str, step: float = 1.0, logs: tuple = ()):
    """Poll ``predicate`` until it is truthy; on timeout say what was awaited and show the
    tails of the servers' ``logs``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    tails = "".join(f"\n--- {p.name}:\n{p.read_text(errors='replace')[-1500:]}" for p in logs)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}{tails}")


@pytest.fixture
def deployment(mini_crawl: Path, tmp_path: Path) -> Iterator[dict]:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(
        "telemetry:\n  enabled: false\n"
        "sensors:\n  use_threads: false\n"
        "run_coordinator:\n  module: dagster.core.run_coordinator\n"
        "  class: QueuedRunCoordinator\n  config:\n    dequeue_interval_seconds: 1\n"
    )
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "CRAWL2DIFFUSION_PROFILE": "commoncrawl",
        "CRAWL2DIFFUSION_CC_ROOT": str(mini_crawl),
        "CRAWL2DIFFUSION_CC_INDEX": str(mini_crawl / "collinfo.json"),
        "CRAWL2DIFFUSION_CRAWLS": "",
        "CRAWL2DIFFUSION_DATA": str(tmp_path / "data"),
    }
    port = free_port()
    workspace = ["-w", str(ROOT / "workspace.yaml")]
    procs = [
        subprocess.Popen(
            [str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port), *workspace],
            cwd=ROOT,
            env=env,
            stdout=(tmp_path / "webserver.log").open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        ),
        subprocess.Popen(
            [str(BIN / "dagster-daemon"), "run", *workspace],
            cwd=ROOT,
            env=env,
            stdout=(tmp_path / "daemon.log").open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        ),
    ]
    try:
        logs = (tmp_path / "webserver.log", tmp_path / "daemon.log")
        wait_for(
            lambda: _ok(f"http://127.0.0.1:{port}/server_info"),
            BUSY_MACHINE_TIMEOUT,
            "dagster-webserver to answer /server_info",
            logs=logs,
        )
        yield {"port": port, "home": home, "env": env, "logs": logs}
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def _ok(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


START_SENSOR = """
mutation($selector: SensorSelector!) {
  startSensor(sensorSelector: $selector) {
    __typename
    ... on Sensor { sensorState { status } }
    ... on PythonError { message }
    ... on SensorNotFoundError { message }
  }
}
"""


@pytest.mark.slow
def test_sensor_tick_and_graphql_materialization(deployment: dict) -> None:
    from dagster_graphql import DagsterGraphQLClient

    port = deployment["port"]
    client = DagsterGraphQLClient("127.0.0.1", port_number=port)
    selector = {
        "repositoryLocationName": "assets_defs.definitions",
        "repositoryName": "__repository__",
        "sensorName": "new_crawl_sensor",
    }

    def start_sensor() -> dict | None:
        """Start the sensor once the code location has loaded (None until then)."""
        result = requests.post(
            f"http://127.0.0.1:{port}/graphql",
            json={"query": START_SENSOR, "variables": {"selector": selector}},
            timeout=60,
        ).json()["data"]["startSensor"]
        return result if result["__typename"] == "Sensor" else None

    started = wait_for(
        start_sensor,
        BUSY_MACHINE_TIMEOUT,
        "the code location to load and the sensor to start",
        step=2,
        logs=deployment["logs"],
    )
    assert started["sensorState"]["status"] == "RUNNING"

    instance = DagsterInstance.from_config(str(deployment["home"]))
    # the daemon ticks the sensor, which requests crawl_manifest_job; the daemon launches it
    manifest_run = wait_for(
        lambda: instance.get_runs(
            RunsFilter(job_name="crawl_manifest_job", statuses=[DagsterRunStatus.SUCCESS])
        ),
        BUSY_MACHINE_TIMEOUT,
        "the sensor's crawl_manifest run",
        step=2,
        logs=deployment["logs"],
    )[0]
    assert manifest_run.tags["crawl2diffusion/new_crawls"] == "MINI-2026-01"
    keys = instance.get_dynamic_partitions("wat_slices")
    assert keys == ["MINI-2026-01_00000", "MINI-2026-01_00001"]  # 4 WAT files, 2 a slice
    run_id = client.submit_job_execution("wat_to_pairs_job", tags={"dagster/partition": keys[0]})
    wait_for(
        lambda: (
            client.get_run_status(run_id) in (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE)
        ),
        BUSY_MACHINE_TIMEOUT,
        "the GraphQL-launched run",
        step=2,
        logs=deployment["logs"],
    )
    assert client.get_run_status(run_id) == DagsterRunStatus.SUCCESS
    event = instance.get_latest_materialization_event(AssetKey(TableName.ALT_TEXT_PAIRS))
    metadata = event.asset_materialization.metadata
    assert metadata["rows_in"].value == 50
    check_keys = [
        AssetCheckKey(AssetKey(TableName.ALT_TEXT_PAIRS), "gx_suite"),
        AssetCheckKey(AssetKey(TableName.ALT_TEXT_PAIRS), "rows_conserved"),
        AssetCheckKey(AssetKey(TableName.WAT_IMAGE_LINKS), "gx_suite"),
    ]
    checks = instance.event_log_storage.get_latest_asset_check_execution_by_key(check_keys)
    assert {k: c.status.value for k, c in checks.items()} == dict.fromkeys(check_keys, "SUCCEEDED")
