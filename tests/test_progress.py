"""The demo's console: one line per run as it starts and ends, the hops' own progress lines,
warnings, and none of the framework's event stream."""

import pytest
from dagster import AssetExecutionContext, Definitions, asset, define_asset_job

from assets_defs.progress import PROGRESS_LOGS, progress_logger


@asset
def talker(context: AssetExecutionContext) -> None:
    context.log.info("fetched 3 of 5 images")
    context.log.warning("2 images timed out")
    context.log.debug("not shown")


def test_progress_logger_prints_hop_lines_and_warnings_only(
    capsys: pytest.CaptureFixture[str],
) -> None:
    defs = Definitions(
        assets=[talker],
        jobs=[define_asset_job("talk", selection=[talker])],
        loggers={"progress": progress_logger},
    )
    result = defs.resolve_job_def("talk").execute_in_process(run_config=PROGRESS_LOGS)
    assert result.success
    err = capsys.readouterr().err
    assert "talker: fetched 3 of 5 images" in err
    assert "talker: WARNING: 2 images timed out" in err
    assert "not shown" not in err
    assert "STEP_START" not in err and "Started execution" not in err
    assert len(err.strip().splitlines()) == 2, err
