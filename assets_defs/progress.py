"""A quiet console for the demo: the hops' own progress lines and every warning, without the
framework's event stream (which stays in the Dagster UI and the run's event log)."""

from __future__ import annotations

import logging
import sys

from dagster import InitLoggerContext, logger

LOG_RECORD_METADATA_ATTR = "dagster_meta"


class _HopLines(logging.Filter):
    """Pass a hop's own messages (``context.log``) at INFO and above and any WARNING; drop the
    framework's events (step started, output handled...)."""

    def filter(self, record: logging.LogRecord) -> bool:
        meta = getattr(record, LOG_RECORD_METADATA_ATTR, None) or {}
        if record.levelno >= logging.WARNING:
            return True
        return meta.get("dagster_event") is None and record.levelno >= logging.INFO


class _Format(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        meta = getattr(record, LOG_RECORD_METADATA_ATTR, None) or {}
        where = meta.get("step_key") or meta.get("job_name") or ""
        level = "" if record.levelno < logging.WARNING else f"{record.levelname}: "
        return f"    {where}: {level}{meta.get('orig_message', record.getMessage())}"


@logger(description="The hops' progress lines and warnings, one per line, on stderr.")
def progress_logger(init_context: InitLoggerContext) -> logging.Logger:
    del init_context
    log = logging.getLogger("crawl2diffusion.progress")
    log.setLevel(logging.INFO)
    log.propagate = False
    log.handlers.clear()  # a fresh handler per run: on the stderr of now
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_HopLines())
    handler.setFormatter(_Format())
    log.addHandler(handler)
    return log


PROGRESS_LOGS = {"loggers": {"progress": {}}}
"""Run config that routes a run's console output through :func:`progress_logger` only."""
