"""The deprecation guard catches Home Assistant's reports about us, and only those."""

from __future__ import annotations

import logging

import pytest

from .deprecation_guard import collect_deprecation_reports, log_reports


@pytest.fixture(autouse=True)
def fail_on_deprecation_reports() -> None:
    """These tests log fake reports on purpose: the package-wide guard stays out."""
    return


REPORT_2027 = (
    "Detected that custom integration 'ha_ingestion' calls `device_registry.async_get_device`, "
    "which is deprecated … This will stop working in Home Assistant 2027.8.0, please report it "
    "to the author of the 'ha_ingestion' custom integration"
)


@pytest.mark.parametrize(
    ("level", "message", "caught"),
    [
        (logging.WARNING, REPORT_2027, True),
        (logging.ERROR, "ha_ingestion uses a deprecated option", True),
        (logging.WARNING, "Detected that custom integration 'other' … will stop working", False),
        (logging.INFO, REPORT_2027, False),
        (logging.WARNING, "Link to Remote Home lost (network: closed); reconnecting", False),
    ],
)
def test_reports_about_us_are_caught(level: int, message: str, caught: bool) -> None:
    with collect_deprecation_reports() as reports:
        logging.getLogger("homeassistant.helpers.frame").log(level, message)
    assert reports.reports == ([message] if caught else [])


def test_collector_is_detached_after_the_block() -> None:
    with collect_deprecation_reports() as reports:
        pass
    logging.getLogger("homeassistant.helpers.frame").warning(REPORT_2027)
    assert reports.reports == []


def test_malformed_record_is_ignored() -> None:
    with collect_deprecation_reports() as reports:
        record = logging.LogRecord("x", logging.WARNING, "x.py", 1, "%s %s", ("one",), None)
        reports.emit(record)
    assert reports.reports == []


def test_deprecation_warning_from_our_package_is_an_error() -> None:
    import warnings

    with pytest.raises(DeprecationWarning):
        warnings.warn_explicit(
            "old API", DeprecationWarning, "x.py", 1, module="custom_components.ha_ingestion.x"
        )


def test_log_reports_finds_the_lines_about_us_in_a_hass_log() -> None:
    """tests/smoke scans the local `hass` log: every kind of report about us, nothing else."""
    about_us = [
        f"2026-12-06 10:10:10.507+00:00 WARNING (MainThread) [homeassistant.helpers.frame] {REPORT_2027}",
        "/config/custom_components/ha_ingestion/sensor.py:12: DeprecationWarning: old API",
        "ERROR [custom_components.ha_ingestion] report_usage failed for ha_ingestion",
    ]
    others = [
        "WARNING [homeassistant.helpers.frame] Detected that custom integration 'other' is deprecated",
        "WARNING [custom_components.ha_ingestion] Link to Remote Home lost; reconnecting",
        "WARNING [homeassistant.loader] We found a custom integration ha_ingestion which has not "
        "been tested by Home Assistant",
    ]
    assert log_reports("\n".join([others[0], *about_us, *others[1:]])) == about_us
