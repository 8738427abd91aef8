"""great-expectations suites on good and bad tables, conservation, and blocking in Dagster."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from dagster import DagsterInstance, materialize

from assets_defs.assets.alt_text_pairs import alt_text_pairs
from assets_defs.assets.crawl_manifest import crawl_manifest
from assets_defs.assets.wat_image_links import wat_image_links
from assets_defs.partitions import wat_slices
from pipeline.hops.alt_text.pairs import parse_alt_texts
from pipeline.lake.tables import TableName
from quality.checks import conservation_check_result, suite_check_result
from quality.gx_runner import run_suite
from quality.suites import build_suite
from tests.test_alt_text import links


@pytest.fixture(scope="module")
def good_links() -> pa.Table:
    return links(
        [
            {"alt": "a purple hexagon on a grey background"},
            {"url": "http://site.test/b.png", "alt": None},
            {"url": "javascript:void(0)"},
        ]
    )


@pytest.fixture(scope="module")
def good_pairs(good_links: pa.Table) -> pa.Table:
    return parse_alt_texts(good_links).table


def replace(table: pa.Table, column: str, values: list) -> pa.Table:
    index = table.schema.get_field_index(column)
    return table.set_column(
        index, table.schema.field(column), pa.array(values, table.schema.field(column).type)
    )


def test_good_tables_pass(good_links: pa.Table, good_pairs: pa.Table) -> None:
    assert run_suite(good_links, build_suite(TableName.WAT_IMAGE_LINKS)).success
    assert run_suite(good_pairs, build_suite(TableName.ALT_TEXT_PAIRS)).success


@pytest.mark.parametrize(
    ("column", "values", "expectation", "example"),
    [
        (
            "drop_reason",
            [None, "missing_alt", "cosmic_rays"],
            "expect_column_values_to_be_in_set",
            "cosmic_rays",
        ),
        ("language", ["english", None, None], "expect_column_values_to_match_regex", "english"),
        ("language_score", [1.5, None, None], "expect_column_values_to_be_between", 1.5),
        ("url_id", [None, None, None], "expect_column_values_to_not_be_null", None),
        (
            "pair_id",
            ["NOT-HEX", "0123456789abcdef", "0123456789abcdef"],
            "expect_column_values_to_match_regex",
            "NOT-HEX",
        ),
        ("drop_reason", [None, None, "not_http"], "expect_column_values_to_not_be_null", None),
    ],
)
def test_bad_pairs_fail_with_useful_message(
    good_pairs: pa.Table, column: str, values: list, expectation: str, example: object
) -> None:
    result = run_suite(replace(good_pairs, column, values), build_suite(TableName.ALT_TEXT_PAIRS))
    assert not result.success
    failure = next(
        o for o in result.failures if o.expectation == expectation and o.column == column
    )
    assert failure.unexpected_count >= 1
    if example is not None:
        assert example in failure.unexpected_examples
        assert str(example) in result.summary()


def test_schema_drift_fails(good_links: pa.Table) -> None:
    result = run_suite(
        good_links.drop_columns(["page_robots"]), build_suite(TableName.WAT_IMAGE_LINKS)
    )
    assert not result.success
    assert any(
        o.expectation == "expect_table_columns_to_match_ordered_list" for o in result.failures
    )


def test_duplicate_link_address_fails(good_links: pa.Table) -> None:
    twice = pa.concat_tables([good_links, good_links])
    result = run_suite(twice, build_suite(TableName.WAT_IMAGE_LINKS))
    assert [o.expectation for o in result.failures] == ["expect_compound_columns_to_be_unique"]


def test_check_results_carry_gx_metadata(good_pairs: pa.Table) -> None:
    bad = replace(good_pairs, "language_score", [7.0, None, None])
    check = suite_check_result(TableName.ALT_TEXT_PAIRS, bad)
    assert not check.passed
    failures = check.metadata["failures"].value
    assert failures[0]["column"] == "language_score" and failures[0]["unexpected_examples"] == [7.0]


def test_conservation_check() -> None:
    assert conservation_check_result(TableName.ALT_TEXT_PAIRS, 10, 6, {"duplicate": 4}).passed
    broken = conservation_check_result(TableName.ALT_TEXT_PAIRS, 10, 6, {"duplicate": 3})
    assert not broken.passed and broken.metadata["unaccounted"].value == 1


def test_failing_blocking_check_stops_downstream(mini_crawl: Path, mini_resources: dict) -> None:
    """A WAT record whose page URL is not http(s) fails hop 1's suite; hop 2 does not run."""
    import gzip

    from tests.conftest import gzip_member, warc_record, wat_payload

    wat = next((mini_crawl / "crawl-data").rglob("MINI-00000.warc.wat.gz"))
    payload = wat_payload(
        [{"path": "IMG@/src", "url": "/a.png", "alt": "a tiny red dot"}],
        page_url="gopher://old.test/page",
    )
    wat.write_bytes(wat.read_bytes() + gzip_member(warc_record(payload, record_id="bad")))
    del gzip
    resources = mini_resources
    with DagsterInstance.ephemeral() as instance:
        assert materialize([crawl_manifest], instance=instance, resources=resources).success
        key = instance.get_dynamic_partitions(wat_slices.name)[0]
        result = materialize(
            [crawl_manifest, wat_image_links, alt_text_pairs],
            selection=[wat_image_links, alt_text_pairs],
            partition_key=key,
            instance=instance,
            resources=resources,
            raise_on_error=False,
        )
        checks = result.get_asset_check_evaluations()
        failed = [c for c in checks if not c.passed]
        assert [c.check_name for c in failed] == ["gx_suite"]
        assert "gopher://old.test/page" in str(failed[0].metadata["failures"].value)
        materialized = {e.asset_key.path[-1] for e in result.get_asset_materialization_events()}
        assert materialized == {TableName.WAT_IMAGE_LINKS}


def test_row_count_change_check() -> None:
    from quality.checks import row_count_check_result

    assert row_count_check_result("t", None, 100, 0.5).passed
    assert row_count_check_result("t", 100, 140, 0.5).passed
    moved = row_count_check_result("t", 100, 20, 0.5)
    assert not moved.passed and moved.severity.value == "WARN"
    assert moved.metadata["change_fraction"].value == 0.8


def _download_results() -> pa.Table:
    from pipeline.lake.tables import DOWNLOAD_RESULTS_SCHEMA

    rows = [
        {
            "pair_id": "p1",
            "url_id": "u1",
            "URL": "https://a.test/1.png",
            "TEXT": "a red circle",
            "batch": "b1",
            "shard": "batches/b1/00000.tar",
            "key": "000000000",
            "status": "success",
            "error_message": None,
            "width": 64,
            "height": 64,
            "original_width": 200,
            "original_height": 150,
            "sha256": "ab" * 32,
            "attempts": 1,
        },
        {
            "pair_id": "p2",
            "url_id": "u2",
            "URL": "https://a.test/2.png",
            "TEXT": "a blue square",
            "batch": "b1",
            "shard": None,
            "key": "000000001",
            "status": "failed_to_download",
            "error_message": "HTTP Error 404: Not Found",
            "width": None,
            "height": None,
            "original_width": None,
            "original_height": None,
            "sha256": None,
            "attempts": 1,
        },
    ]
    return pa.Table.from_pylist(rows, schema=DOWNLOAD_RESULTS_SCHEMA)


def test_download_results_suite_good_and_bad() -> None:

    good = _download_results()
    assert run_suite(good, build_suite(TableName.DOWNLOAD_RESULTS)).success
    bad = replace(good, "status", ["success", "mystery"])
    bad = replace(bad, "shard", [None, "batches/b1/00000.tar"])
    result = run_suite(bad, build_suite(TableName.DOWNLOAD_RESULTS))
    assert not result.success
    failed = {(o.expectation, o.column) for o in result.failures}
    assert ("expect_column_values_to_be_in_set", "status") in failed
    assert ("expect_column_values_to_not_be_null", "shard") in failed  # a success needs a shard
    assert ("expect_column_values_to_be_null", "shard") in failed  # a failure has none


def test_training_manifest_and_audit_suites_good_and_bad() -> None:
    from pipeline.lake.tables import AUDIT_SCHEMA
    from pipeline.lake.tables import TRAINING_MANIFEST_SCHEMA as MANIFEST_SCHEMA

    manifest = pa.Table.from_pylist(
        [
            {
                "pair_id": "p1",
                "checkpoint_step": 10,
                "checkpoint_sha256": "ab" * 32,
                "times_seen": 2,
                "url_id": "p1-url",
                "URL": "https://a.example/p1.png",
                "sha256": "cd" * 32,
                "crawl": "CC-MAIN-2026-01",
                "shard": "batches/b/00000.tar",
                "key": "p1-key",
                "download_results_version": 3,
            },
            {
                "pair_id": "p2",
                "checkpoint_step": 10,
                "checkpoint_sha256": "ab" * 32,
                "times_seen": 1,
                "url_id": "p2-url",
                "URL": "https://a.example/p2.png",
                "sha256": "cd" * 32,
                "crawl": "CC-MAIN-2026-01",
                "shard": "batches/b/00000.tar",
                "key": "p2-key",
                "download_results_version": 3,
            },
        ],
        schema=MANIFEST_SCHEMA,
    )
    assert run_suite(manifest, build_suite(TableName.TRAINING_MANIFEST)).success
    twice = replace(manifest, "pair_id", ["p1", "p1"])
    failed = {
        o.expectation for o in run_suite(twice, build_suite(TableName.TRAINING_MANIFEST)).failures
    }
    assert failed == {"expect_compound_columns_to_be_unique"}
    audit = pa.Table.from_pylist(
        [
            {
                "prompt_pair_id": "p1",
                "prompt": "a red circle",
                "seed": 0,
                "nearest_pair_id": "p2",
                "similarity": 0.4,
                "next_similarity": 0.3,
                "margin": 0.1,
                "nearest_is_prompt_pair": False,
                "flagged": False,
                "checkpoint_sha256": "ab" * 32,
                "descriptor": "pixels",
            }
        ],
        schema=AUDIT_SCHEMA,
    )
    assert run_suite(audit, build_suite(TableName.REPLICATION_AUDIT)).success
    bad = replace(replace(audit, "similarity", [3.0]), "descriptor", ["vibes"])
    failed = {
        (o.expectation, o.column)
        for o in run_suite(bad, build_suite(TableName.REPLICATION_AUDIT)).failures
    }
    assert failed == {
        ("expect_column_values_to_be_between", "similarity"),
        ("expect_column_values_to_be_in_set", "descriptor"),
    }
