"""infra/ (issue 17.5): no container engine or cluster runs here, so every manifest is parsed
and checked against the project: images are the Dockerfile's targets, env vars are settings
(pipeline/settings.py) or AWS's, secrets are defined, the Helm queue and pools are
infra/dagster.yaml's, infra/pools.yaml limits the pools the assets name, and the Dockerfile
installs with constraints.txt and real extras."""

from __future__ import annotations

import dataclasses
import importlib.util
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline.settings import Settings, env_name

REPO = Path(__file__).resolve().parents[1]
INFRA = REPO / "infra"
MANIFESTS = sorted([INFRA / "helm" / "values.yaml", *(INFRA / "k8s").glob("*.yaml")])
IMAGE = "registry.example.com/crawl2diffusion"
AWS = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION",
       "AWS_ENDPOINT_URL"}  # fmt: skip
"""The standard AWS variables s3fs (botocore) and delta-rs read."""


def documents() -> list[dict[str, Any]]:
    return [doc for path in MANIFESTS for doc in yaml.safe_load_all(path.read_text()) if doc]


def walk(node: Any) -> Iterator[tuple[str, Any]]:
    """Every (key, value) pair of a parsed YAML tree."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item)


def dockerfile_targets() -> set[str]:
    text = (INFRA / "Dockerfile").read_text()
    return set(re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", text, re.MULTILINE | re.IGNORECASE))


def values() -> dict[str, Any]:
    return yaml.safe_load((INFRA / "helm" / "values.yaml").read_text())


def test_every_manifest_parses() -> None:
    assert len(MANIFESTS) >= 5
    kinds = {doc.get("kind") for doc in documents()}
    assert {"RayCluster", "Secret", "Pod", "PersistentVolumeClaim"} <= kinds


def test_images_are_the_dockerfiles_targets() -> None:
    targets = dockerfile_targets()
    assert {"cpu", "cuda"} <= targets
    named = []
    for key, value in walk(documents()):
        if key == "image" and isinstance(value, str):
            named.append(value)
        elif key == "image" and isinstance(value, dict):
            named.append(f"{value['repository']}:{value['tag']}")
    assert named and {n.rsplit(":", 1)[0] for n in named} == {IMAGE}
    assert {n.rsplit(":", 1)[1] for n in named} == {"cpu", "cuda"}


def test_env_vars_are_settings_or_aws() -> None:
    settings = {env_name(f.name) for f in dataclasses.fields(Settings)}
    named: set[str] = set()
    for key, value in walk(documents()):
        if key == "env" and isinstance(value, list):
            named |= {item["name"] for item in value}
        elif key == "stringData":
            named |= set(value)
    assert named, "no env var named"
    assert named <= settings | AWS, named - settings - AWS
    assert env_name("lake") in named and "AWS_SECRET_ACCESS_KEY" in named


def test_secrets_referenced_are_defined() -> None:
    docs = documents()
    defined = {d["metadata"]["name"] for d in docs if d.get("kind") == "Secret"}
    helm = values()
    if helm.get("generatePostgresqlPasswordSecret"):
        defined.add(helm["global"]["postgresqlSecretName"])
    referenced = {helm["global"]["postgresqlSecretName"]}
    for key, value in walk(docs):
        if key == "envSecrets":
            referenced |= {item["name"] for item in value}
        elif key == "secretRef":
            referenced.add(value["name"])
    assert referenced <= defined, referenced - defined
    claims = {v["claimName"] for k, v in walk(docs) if k == "persistentVolumeClaim"}
    volumes = {d["metadata"]["name"] for d in docs if d.get("kind") == "PersistentVolumeClaim"}
    assert claims <= volumes


def test_helm_queue_and_pools_match_the_instance() -> None:
    instance = yaml.safe_load((INFRA / "dagster.yaml").read_text())
    helm = values()
    queue = helm["dagsterDaemon"]["runCoordinator"]
    assert instance["run_coordinator"]["class"] == queue["type"] == "QueuedRunCoordinator"
    assert "config" not in queue and "config" not in instance["run_coordinator"]
    runs, helm_runs = instance["concurrency"]["runs"], helm["concurrency"]["runs"]
    assert helm_runs == {"maxConcurrentRuns": runs["max_concurrent_runs"]}
    pools, helm_pools = instance["concurrency"]["pools"], helm["concurrency"]["pools"]
    assert helm_pools == {
        "granularity": pools["granularity"],
        "defaultLimit": pools["default_limit"],
        "opGranularityRunBuffer": pools["op_granularity_run_buffer"],
    }
    assert helm["runLauncher"]["type"] == "K8sRunLauncher"
    assert helm["postgresql"]["enabled"] and "postgres" in instance["storage"]
    db = instance["storage"]["postgres"]["postgres_db"]
    assert helm["postgresql"]["postgresqlScheme"] == db["scheme"] == "postgresql+psycopg2"
    assert helm["telemetry"]["enabled"] is instance["telemetry"]["enabled"] is False


def test_pool_limits_name_the_pools_the_assets_use() -> None:
    """infra/pools.yaml sets a limit for every pool an asset names, and for no other."""
    from assets_defs.definitions import defs
    from assets_defs.pools import Pool

    limits = yaml.safe_load((INFRA / "pools.yaml").read_text())
    graph = defs.resolve_asset_graph()
    used = {pool for key in graph.get_all_asset_keys() for pool in graph.get(key).pools or ()}
    assert set(limits) == used == set(Pool.ALL)
    assert all(isinstance(n, int) and n >= 1 for n in limits.values()), limits
    documented = (REPO / "docs" / "deploy.md").read_text()
    for pool, limit in limits.items():
        assert f"dagster instance concurrency set {pool} {limit}" in documented


def test_code_location_is_the_workspaces() -> None:
    workspace = yaml.safe_load((REPO / "workspace.yaml").read_text())
    module = workspace["load_from"][0]["python_module"]["module_name"]
    [deployment] = values()["dagster-user-deployments"]["deployments"]
    assert deployment["dagsterApiGrpcArgs"] == ["--module-name", module]
    assert module in (INFRA / "Dockerfile").read_text()


def test_dockerfile_installs_with_constraints_and_real_extras() -> None:
    text = (INFRA / "Dockerfile").read_text()
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    installs = re.findall(r"pip install[^\n]*", text.replace("\\\n", " "))
    assert len(installs) == 2  # cpu and cuda
    for install in installs:
        assert "-c constraints.txt" in install
        named = re.findall(r"\.\[([\w,-]+)\]", install)
        assert named and all(e in extras for group in named for e in group.split(","))
    for source in re.findall(r"^COPY (?!--from)(.+?) \S+$", text, re.MULTILINE):
        for path in source.split():
            assert (REPO / path).exists(), path


@pytest.mark.parametrize("group", ["fetch-cpu", "clip-gpu"])
def test_raycluster_worker_groups(group: str) -> None:
    [ray] = [d for d in documents() if d.get("kind") == "RayCluster"]
    [spec] = [g for g in ray["spec"]["workerGroupSpecs"] if g["groupName"] == group]
    [container] = spec["template"]["spec"]["containers"]
    gpus = container["resources"].get("limits", {}).get("nvidia.com/gpu")
    assert (gpus == 1, container["image"].endswith(":cuda")) == ((group == "clip-gpu"),) * 2


def test_training_pod_runs_the_child_on_a_gpu() -> None:
    [pod] = [d for d in documents() if d.get("kind") == "Pod"]
    [container] = pod["spec"]["containers"]
    assert container["image"] == f"{IMAGE}:cuda"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert pod["spec"]["nodeSelector"]
    module = container["command"][-1]
    assert container["command"][:2] == ["python", "-m"] and importlib.util.find_spec(module)
