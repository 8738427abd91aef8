"""Opt-outs: the list in the lake, matching, the dataset hop's drops, the report of checkpoints
trained on withdrawn items, the CLI and the sensor."""

from __future__ import annotations

import pyarrow as pa
import pytest
from dagster import DagsterInstance, SensorResult, SkipReason, build_sensor_context

from assets_defs.resources import LakeResource
from assets_defs.sensors import opt_out_sensor
from crawl2diffusion.cli import main
from pipeline.hops.dataset import opt_outs as optout
from pipeline.hops.dataset.release import build_release
from pipeline.lake.store import Lake
from pipeline.lake.tables import TableName

SHA = "ab" * 32


def _scores() -> pa.Table:
    rows = [
        ("p1", "u1", "https://artist.example/a.png", "a red circle", 0.31, SHA),
        ("p2", "u2", "https://cdn.artist.example/b.png", "a blue square", 0.30, "cd" * 32),
        ("p3", "u3", "https://other.example/c.png", "a green star", 0.33, "ef" * 32),
        ("p4", "u4", "https://other.example/d.png", "a pink heart", 0.29, "01" * 32),
        ("p5", "u4", "https://other.example/d.png", "a pink heart", 0.35, "01" * 32),
    ]
    return pa.table(
        {
            "pair_id": [r[0] for r in rows],
            "url_id": [r[1] for r in rows],
            "url": [r[2] for r in rows],
            "text": [r[3] for r in rows],
            "similarity": pa.array([r[4] for r in rows], pa.float32()),
            "sha256": [r[5] for r in rows],
            "kept": [True] * len(rows),
            "width": pa.array([64] * 5, pa.int32()),
            "height": pa.array([64] * 5, pa.int32()),
            "punsafe": pa.array([0.1] * 5, pa.float32()),
            "pwatermark": pa.array([0.1] * 5, pa.float32()),
            "language": ["en"] * 5,
            "crawl_id": ["CC-1"] * 5,
            "source_partition": ["s"] * 5,
        }
    )


def test_list_is_canonical_and_matches_url_domain_and_file(tmp_path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    optout.add(
        lake, [("domain", "https://Artist.Example/"), ("url", "HTTPS://other.example/c.png#x")]
    )
    table = optout.add(lake, [("sha256", SHA.upper()), ("domain", "artist.example")], note="mail")
    assert sorted(table.column("value").to_pylist()) == sorted(
        ["artist.example", "https://other.example/c.png", SHA]
    )  # added once, canonical
    listed = optout.load(lake)
    assert listed.match("https://cdn.artist.example/b.png") == "opted_out:domain"
    assert listed.match("https://notartist.example/b.png") is None
    assert listed.match("https://other.example:443/c.png") == "opted_out:url"
    assert listed.match("https://x.example/y.png", SHA) == "opted_out:sha256"
    with pytest.raises(ValueError, match="sha256"):
        optout.add(lake, [("sha256", "nothex")])
    with pytest.raises(ValueError, match="kind"):
        optout.add(lake, [("email", "a@b.c")])


def test_release_drops_opted_out_pairs_with_reasons_and_conserves_rows() -> None:
    listed = optout.OptOutList.from_table(
        pa.table(
            {
                "kind": ["domain", "url"],
                "value": ["artist.example", "https://other.example/d.png"],
            }
        )
    )
    result = build_release(_scores(), opt_outs=listed)
    reasons = dict(
        zip(
            result.decisions.column("pair_id").to_pylist(),
            result.decisions.column("drop_reason").to_pylist(),
            strict=True,
        )
    )
    assert reasons == {
        "p1": "opted_out:domain",
        "p2": "opted_out:domain",
        "p3": None,
        "p4": "opted_out:url",
        "p5": "opted_out:url",
    }
    assert result.release.column("pair_id").to_pylist() == ["p3"]
    assert result.rows_in == result.rows_kept + sum(result.dropped.values()) == 5
    plain = build_release(_scores())
    assert plain.dropped == {"global_duplicate": 1} and plain.rows_kept == 4


def test_report_names_checkpoints_trained_on_withdrawn_pairs() -> None:
    """The report reads only the pinned manifests: each row carries the URL and sha256 the
    checkpoint trained on."""
    listed = optout.OptOutList.from_table(
        pa.table({"kind": ["sha256", "domain"], "value": [SHA, "gone.example"]})
    )
    manifest = pa.table(
        {
            "pair_id": ["p1", "p3", "p1", "p4"],
            "checkpoint_step": pa.array([10, 10, 20, 20], pa.int32()),
            "checkpoint_sha256": ["c10", "c10", "c20", "c20"],
            "times_seen": pa.array([2, 1, 4, 1], pa.int32()),
            "URL": ["https://a/1", "https://b/3", "https://a/1", "https://img.gone.example/4"],
            "sha256": [SHA, "ef" * 32, SHA, "ab" * 32],
            "run_fingerprint": ["run"] * 4,
        }
    )
    report = optout.trained_on_opted_out(listed, manifest)
    assert report.select(["checkpoint_sha256", "pair_id", "match"]).to_pylist() == [
        {"checkpoint_sha256": "c10", "pair_id": "p1", "match": "opted_out:sha256"},
        {"checkpoint_sha256": "c20", "pair_id": "p1", "match": "opted_out:sha256"},
        {"checkpoint_sha256": "c20", "pair_id": "p4", "match": "opted_out:domain"},
    ]
    assert optout.trained_on_opted_out(optout.OptOutList(), manifest).num_rows == 0


def test_report_names_checkpoints_trained_on_a_hash_list_match() -> None:
    """A takedown list that grows after training: md5 exactly, PDQ within the distance, from
    the hashes pinned in the manifest."""
    from datetime import UTC, datetime

    from pipeline.hops.dataset.hash_lists import HashLists
    from pipeline.lake.tables import HASH_LIST_SCHEMA

    pdq = "f0" * 32
    near = "f1" + "f0" * 31  # one bit away
    far = "0f" * 32
    manifest = pa.table(
        {
            "pair_id": ["p1", "p2", "p3"],
            "checkpoint_step": pa.array([10, 10, 10], pa.int32()),
            "checkpoint_sha256": ["c10"] * 3,
            "times_seen": pa.array([1, 1, 1], pa.int32()),
            "URL": ["https://a/1", "https://a/2", "https://a/3"],
            "sha256": ["11" * 32, "22" * 32, "33" * 32],
            "md5": ["aa" * 16, "bb" * 16, None],
            "pdq": [far, near, None],
            "run_fingerprint": ["run"] * 3,
        }
    )
    now = datetime.now(UTC).replace(microsecond=0)
    lists = HashLists(
        pa.Table.from_pylist(
            [
                {"name": "ngo", "kind": "md5", "value": "aa" * 16, "added_at": now},
                {"name": "perceptual", "kind": "pdq", "value": pdq, "added_at": now},
            ],
            schema=HASH_LIST_SCHEMA,
        )
    )
    report = optout.trained_on_opted_out(optout.OptOutList(), manifest, lists)
    assert report.select(["pair_id", "match"]).to_pylist() == [
        {"pair_id": "p1", "match": "hash_list:ngo"},
        {"pair_id": "p2", "match": "hash_list:perceptual"},
    ]


def test_cli_adds_and_lists(tmp_path, capsys) -> None:
    lake = str(tmp_path / "lake")
    assert (
        main(["opt-out", "--lake", lake, "--domain", "artist.example", "--note", "ticket 7"]) == 0
    )
    assert main(["opt-out", "--lake", lake, "--sha256", "zz"]) == 2
    capsys.readouterr()
    assert main(["opt-out", "--lake", lake]) == 0
    assert "domain\tartist.example" in capsys.readouterr().out


def test_sensor_rebuilds_every_crawl_once_per_change(tmp_path) -> None:
    lake_resource = LakeResource(root=str(tmp_path / "lake"))
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("crawls", ["CC-1", "CC-2"])
        ctx = build_sensor_context(instance=instance, resources={"lake": lake_resource})
        assert isinstance(opt_out_sensor(ctx), SkipReason)
        optout.add(lake_resource.lake(), [("domain", "artist.example")])
        first = opt_out_sensor(
            build_sensor_context(instance=instance, resources={"lake": lake_resource})
        )
        jobs = [(r.job_name, r.partition_key) for r in first.run_requests]
        assert jobs == [
            ("dataset_job", "CC-1"),
            ("dataset_job", "CC-2"),
            ("opt_out_report_job", None),
        ]
        assert [e.asset_key.to_user_string() for e in first.asset_events] == [TableName.OPT_OUTS]
        same = opt_out_sensor(
            build_sensor_context(
                instance=instance, cursor=first.cursor, resources={"lake": lake_resource}
            )
        )
        assert isinstance(same, SkipReason)
        optout.add(lake_resource.lake(), [("url", "https://x.example/1.png")])
        later = opt_out_sensor(
            build_sensor_context(
                instance=instance, cursor=first.cursor, resources={"lake": lake_resource}
            )
        )
        assert len(later.run_requests) == 3 and later.cursor != first.cursor


def test_sensor_fires_on_hash_lists_and_never_requests_hops_1_to_3(tmp_path) -> None:
    """A hash list change fires the sensor as an opt-out change does; every run it requests
    is of the dataset (and later) or the report, never a job holding hops 1-3."""
    from assets_defs.definitions import defs
    from pipeline.hops.dataset import hash_lists

    early = {TableName.WAT_IMAGE_LINKS, TableName.ALT_TEXT_PAIRS, TableName.CLIP_SCORES,
             TableName.IMAGE_EMBEDDINGS, TableName.CRAWL_MANIFEST}  # fmt: skip
    lake_resource = LakeResource(root=str(tmp_path / "lake"))
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("crawls", ["CC-1"])

        def evaluate(cursor: str | None = None):
            return opt_out_sensor(
                build_sensor_context(
                    instance=instance, cursor=cursor, resources={"lake": lake_resource}
                )
            )

        hash_lists.add(lake_resource.lake(), "ncii", [("md5", "0f" * 16)])
        first = evaluate()
        assert [e.asset_key.to_user_string() for e in first.asset_events] == [TableName.HASH_LISTS]
        assert isinstance(evaluate(first.cursor), SkipReason)
        hash_lists.add(lake_resource.lake(), "ncii", [("md5", "1f" * 16)])
        grown = evaluate(first.cursor)
        optout.add(lake_resource.lake(), [("domain", "artist.example")])
        both = evaluate(grown.cursor)
        assert [e.asset_key.to_user_string() for e in both.asset_events] == [TableName.OPT_OUTS]
        assert isinstance(evaluate("opt_outs/part-0.parquet"), SensorResult)  # an old cursor
        for result in (first, grown, both):
            assert [(r.job_name, r.partition_key) for r in result.run_requests] == [
                ("dataset_job", "CC-1"),
                ("opt_out_report_job", None),
            ]
            for request in result.run_requests:
                job = defs.resolve_job_def(request.job_name)
                selected = {k.to_user_string() for k in job.asset_layer.executable_asset_keys}
                assert selected and not selected & early, (request.job_name, selected)
