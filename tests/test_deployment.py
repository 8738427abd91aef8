"""A real deployment on loopback: dagster-webserver + dagster-daemon on a PostgreSQL server the
test starts (tests/postgres_server.py), with the instance written from infra/dagster.yaml (the
QueuedRunCoordinator, op pools). The daemon ticks the new-crawl sensor and launches its run; a
partitioned materialization is submitted through the GraphQL API and its checks and metadata are
read; a backfill of four slices keeps to the run limit and the `download` pool's limit, read
back from PostgreSQL's own tables."""

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
import yaml
from dagster import AssetCheckKey, AssetKey, DagsterInstance, DagsterRunStatus, RunsFilter

from pipeline.lake.tables import TableName
from tests.conftest import free_port
from tests.postgres_server import PostgresServer

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
LOCATION = {"repositoryLocationName": "assets_defs.definitions", "repositoryName": "__repository__"}

SLICES = 3
"""Partitions the backfill covers: more than the run limit, so one must queue."""
MAX_RUNS = 2
"""The test's run limit (infra/dagster.yaml: 8)."""
DOWNLOAD_LIMIT = 1
"""The test's `download` pool limit (infra/pools.yaml: 2): two runs wait on it at once."""

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


def instance_config() -> dict:
    """infra/dagster.yaml with the test's smaller limits and a faster queue."""
    config = yaml.safe_load((ROOT / "infra" / "dagster.yaml").read_text())
    assert "postgres" in config["storage"] and "pools" in config["concurrency"]
    config["concurrency"]["runs"]["max_concurrent_runs"] = MAX_RUNS
    # runs may start while their first step's pool is full (infra/dagster.yaml: 1 beyond it)
    config["concurrency"]["pools"]["op_granularity_run_buffer"] = MAX_RUNS
    config["run_coordinator"]["config"] = {"dequeue_interval_seconds": 1}
    config["sensors"] = {"use_threads": False}
    return config


@pytest.fixture
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer(port=free_port()).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def deployment(
    mini_crawl: Path, tmp_path: Path, postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict]:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump(instance_config()))
    for name, value in postgres.env().items():
        monkeypatch.setenv(name, value)  # for this process's DagsterInstance too
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "CRAWL2DIFFUSION_PROFILE": "commoncrawl",
        "CRAWL2DIFFUSION_CC_ROOT": str(mini_crawl),
        "CRAWL2DIFFUSION_CC_INDEX": str(mini_crawl / "collinfo.json"),
        "CRAWL2DIFFUSION_CRAWLS": "",
        "CRAWL2DIFFUSION_DATA": str(tmp_path / "data"),
        "CRAWL2DIFFUSION_LAKE": str(tmp_path / "lake"),
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
        with DagsterInstance.from_config(str(home)) as instance:
            yield {"port": port, "home": home, "env": env, "logs": logs, "instance": instance,
                   "postgres": postgres}  # fmt: skip
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
    selector = {**LOCATION, "sensorName": "new_crawl_sensor"}

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

    instance = deployment["instance"]
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


LAUNCH_BACKFILL = """
mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on Error { message }
  }
}
"""

LOCATIONS = """
{
  workspaceOrError {
    ... on Workspace {
      locationEntries {
        name loadStatus locationOrLoadError { __typename ... on PythonError { message } }
      }
    }
  }
}
"""

RUN_EVENTS = ("PIPELINE_START", "PIPELINE_SUCCESS", "PIPELINE_FAILURE")
STEP_EVENTS = ("STEP_START", "STEP_SUCCESS", "STEP_FAILURE")


def most_at_once(intervals: list[tuple[float, float]]) -> int:
    """The largest number of ``(start, end)`` intervals open at one instant (an end at the
    same instant as a start closes first)."""
    edges = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    open_, most = 0, 0
    for _, delta in edges:
        open_ += delta
        most = max(most, open_)
    return most


def intervals(rows: list[tuple], starts: str, ends: tuple[str, ...]) -> dict:
    """(start, end) timestamps per key from ``(key, event_type, timestamp)`` rows."""
    opened = {key: ts for key, kind, ts in rows if kind == starts}
    closed = {key: ts for key, kind, ts in rows if kind in ends}
    assert opened.keys() == closed.keys(), (opened, closed)
    return {key: (opened[key].timestamp(), closed[key].timestamp()) for key in opened}


@pytest.mark.slow
def test_backfill_on_postgres_keeps_the_run_and_pool_limits(
    deployment: dict, mini_crawl: Path, tmp_path: Path
) -> None:
    """A backfill of hop 1 (`wat_to_pairs_job`'s download step) over three slices, at most two
    runs at once, the `download` pool closed (limit 0) until both first runs wait on it, then
    opened to one slot as an operator would, with the CLI: the second run's download step must
    wait for the first's. Runs, steps and limits are read from PostgreSQL's own tables."""
    from dagster import materialize

    from assets_defs.assets.crawl_manifest import crawl_manifest
    from assets_defs.resources import CrawlSourceResource, LakeResource, SyntheticWebResource

    instance, postgres = deployment["instance"], deployment["postgres"]
    logs = deployment["logs"]
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
    resources = {
        "lake": LakeResource(root=str(tmp_path / "lake")),
        "crawl_source": CrawlSourceResource(
            data_root=str(mini_crawl), collinfo_uri=str(mini_crawl / "collinfo.json")
        ),
        "synthetic_web": SyntheticWebResource(enabled=False),
    }
    manifest = {"slice_size": 1, "sample_size": SLICES}  # one partition per WAT file
    config = {"ops": {TableName.CRAWL_MANIFEST: {"config": manifest}}}
    assert materialize([crawl_manifest], instance=instance, resources=resources, run_config=config)
    keys = instance.get_dynamic_partitions("wat_slices")
    assert len(keys) == SLICES
    instance.event_log_storage.set_concurrency_slots("download", 0)  # closed

    port = deployment["port"]

    def graphql(query: str, variables: dict | None = None) -> dict:
        response = requests.post(
            f"http://127.0.0.1:{port}/graphql",
            json={"query": query, "variables": variables or {}},
            timeout=60,
        ).json()
        assert not response.get("errors"), response["errors"]
        return response["data"]

    def location_loaded() -> bool:
        entries = graphql(LOCATIONS)["workspaceOrError"]["locationEntries"]
        [entry] = [e for e in entries if e["name"] == LOCATION["repositoryLocationName"]]
        loaded = entry["loadStatus"] == "LOADED"
        location = entry["locationOrLoadError"]
        assert not loaded or location["__typename"] == "RepositoryLocation", location
        return loaded

    wait_for(location_loaded, BUSY_MACHINE_TIMEOUT, "the webserver to load the code location",
             step=2, logs=logs)  # fmt: skip
    params = {
        "selector": {
            "partitionSetName": "wat_to_pairs_job_partition_set",
            "repositorySelector": LOCATION,
        },
        "partitionNames": keys,
        # hop 1 only (the download step; hop 2's language models would cost minutes) in one
        # process per run (one code load, not one per step): the pools hold in it too
        "assetSelection": [{"path": [TableName.WAT_IMAGE_LINKS]}],
        "runConfigData": {"execution": {"config": {"in_process": {}}}},
    }
    launched = graphql(LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    backfill_id = launched["backfillId"]

    def query(sql: str, args: tuple = ()) -> list[tuple]:
        with postgres.connect() as conn, conn.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchall()

    blocked_sql = "SELECT DISTINCT run_id FROM event_logs WHERE step_key = %s AND event LIKE %s"
    blocked_args = (TableName.WAT_IMAGE_LINKS, "%Step blocked by limit for pool download%")
    waiting = wait_for(
        lambda: len(rows := query(blocked_sql, blocked_args)) >= MAX_RUNS and rows,
        BUSY_MACHINE_TIMEOUT, f"{MAX_RUNS} runs' download steps to wait on the closed pool",
        step=2, logs=logs,
    )  # fmt: skip
    started = query(
        "SELECT count(*) FROM event_logs WHERE dagster_event_type = 'STEP_START'"
        " AND step_key = %s", (TableName.WAT_IMAGE_LINKS,),
    )  # fmt: skip
    assert started == [(0,)]  # the closed pool held them all
    subprocess.run(
        [str(BIN / "dagster"), "instance", "concurrency", "set", "download", str(DOWNLOAD_LIMIT)],
        env=deployment["env"], check=True, capture_output=True, timeout=BUSY_MACHINE_TIMEOUT,
    )  # fmt: skip

    def finished() -> list | None:
        runs = instance.get_runs(RunsFilter.for_backfill(backfill_id))
        done = [r for r in runs if r.is_finished]
        return runs if len(runs) == len(keys) and len(done) == len(runs) else None

    runs = wait_for(finished, BUSY_MACHINE_TIMEOUT, f"the backfill's {len(keys)} runs to finish",
                    step=2, logs=logs)  # fmt: skip
    assert {r.status for r in runs} == {DagsterRunStatus.SUCCESS}

    run_ids = [r.run_id for r in runs]
    assert {run_id for (run_id,) in waiting} <= set(run_ids)
    statuses = query(
        "SELECT run_id, status FROM runs JOIN run_tags t USING (run_id)"
        " WHERE t.key = 'dagster/backfill' AND t.value = %s", (backfill_id,),
    )  # fmt: skip
    assert dict(statuses) == dict.fromkeys(run_ids, "SUCCESS")
    events = "SELECT run_id, dagster_event_type, timestamp FROM event_logs"
    run_spans = intervals(
        query(f"{events} WHERE run_id = ANY(%s) AND dagster_event_type = ANY(%s)",
              (run_ids, list(RUN_EVENTS))),
        RUN_EVENTS[0], RUN_EVENTS[1:],
    )  # fmt: skip
    download_spans = intervals(
        query(f"{events} WHERE run_id = ANY(%s) AND dagster_event_type = ANY(%s)"
              " AND step_key = %s", (run_ids, list(STEP_EVENTS), TableName.WAT_IMAGE_LINKS)),
        STEP_EVENTS[0], STEP_EVENTS[1:],
    )  # fmt: skip
    limits = dict(query('SELECT concurrency_key, "limit" FROM concurrency_limits'))
    assert limits["download"] == DOWNLOAD_LIMIT
    assert len(run_spans) == len(download_spans) == len(keys)
    # runs overlapped, and never more than the run limit at once
    assert most_at_once(list(run_spans.values())) == MAX_RUNS, run_spans
    # two download steps were waiting when the pool opened; they still ran one at a time
    assert most_at_once(list(download_spans.values())) == DOWNLOAD_LIMIT, download_spans
