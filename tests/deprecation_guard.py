"""Fail a test when Home Assistant reports deprecated use by this integration.

Home Assistant announces a coming break by logging a report ("… custom integration 'ha_ingestion' …
This will stop working in Home Assistant 2027.8.0 …", "… is deprecated …") rather than by raising.
`DeprecationWarning`s from our package are made errors in pyproject.toml; this catches the log reports.
"""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
import logging
import re

REPORT = re.compile(r"will stop working|deprecated", re.IGNORECASE)
OURS = re.compile(r"ha_ingestion")
# In a `hass` process's log (tests/smoke) also a Python warning printed to the console
# ("custom_components/ha_ingestion/...: DeprecationWarning: ...") and a `report_usage` line.
LOG_REPORT = re.compile(r"will stop working|deprecat|report_usage", re.IGNORECASE)


def log_reports(text: str) -> list[str]:
    """The lines of a `hass` log that report deprecated use by ha_ingestion."""
    return [line for line in text.splitlines() if LOG_REPORT.search(line) and OURS.search(line)]


class DeprecationReports(logging.Handler):
    """Collects warning-or-worse records that report deprecated use by ha_ingestion."""

    def __init__(self) -> None:
        """Collect from WARNING up."""
        super().__init__(logging.WARNING)
        self.reports: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        """Keep the record's message if it is such a report."""
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record is not our report
            return
        if REPORT.search(message) and (OURS.search(message) or OURS.search(record.pathname)):
            self.reports.append(message)


@contextlib.contextmanager
def collect_deprecation_reports() -> Iterator[DeprecationReports]:
    """Attach a collector to the root logger for the duration of the block."""
    handler = DeprecationReports()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
