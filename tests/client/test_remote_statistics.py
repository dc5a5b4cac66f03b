"""The engine's statistics requests and replies: bounded plans, typed rows, bad input counted."""

from __future__ import annotations

from datetime import UTC, datetime

from custom_components.ha_ingestion.client import (
    FIVE_MINUTES,
    HOUR,
    StatisticsMeta,
    StatisticsRequest,
    StatisticsRow,
    floor_to,
    metadata_payload,
    parse_metadata,
    parse_rows,
    plan_requests,
)

T0 = 1_764_640_800.0  # 2025-12-02T02:00:00Z, the top of an hour


def test_plan_is_bounded_in_ids_and_time_and_covers_every_period() -> None:
    ids = [f"sensor.s{i}" for i in range(45)]
    requests = list(plan_requests(ids, T0 + 7, T0 + 10 * HOUR, HOUR, max_ids=20, max_rows=4))
    assert [len(r.statistic_ids) for r in requests[::3]] == [20, 20, 5]
    assert all(r.end - r.start <= 4 * HOUR for r in requests)
    # Per chunk of ids: consecutive windows from the period holding the start to the end.
    assert [(r.start, r.end) for r in requests[:3]] == [
        (T0, T0 + 4 * HOUR),
        (T0 + 4 * HOUR, T0 + 8 * HOUR),
        (T0 + 8 * HOUR, T0 + 10 * HOUR),
    ]
    assert sorted({i for r in requests for i in r.statistic_ids}) == sorted(ids)
    assert list(plan_requests(ids, T0, T0, HOUR)) == []
    assert floor_to(T0 + 299.9, FIVE_MINUTES) == T0
    assert floor_to(T0 + 300, FIVE_MINUTES) == T0 + 300


def test_payloads_are_what_home_assistant_expects() -> None:
    request = StatisticsRequest(
        statistic_ids=("sensor.a",), start=T0, end=T0 + HOUR, period=FIVE_MINUTES
    )
    assert request.payload({"power": "W"}) == {
        "type": "recorder/statistics_during_period",
        "start_time": "2025-12-02T02:00:00+00:00",
        "end_time": "2025-12-02T03:00:00+00:00",
        "statistic_ids": ["sensor.a"],
        "period": "5minute",
        "types": ["last_reset", "max", "mean", "min", "state", "sum"],
        "units": {"power": "W"},
    }
    assert "units" not in request.payload(None)
    assert metadata_payload(["sensor.a"]) == {
        "type": "recorder/get_statistics_metadata",
        "statistic_ids": ["sensor.a"],
    }


def test_metadata_is_read_strictly() -> None:
    reply = [
        {
            "statistic_id": "sensor.a",
            "statistics_unit_of_measurement": "W",
            "unit_class": "power",
            "has_sum": False,
            "mean_type": 1,
            "has_mean": True,
        },
        # A remote from before mean_type: has_mean tells it.
        {
            "statistic_id": "sensor.b",
            "statistics_unit_of_measurement": None,
            "has_sum": True,
            "has_mean": False,
        },
        {"statistic_id": "sensor.c", "has_sum": "yes", "mean_type": 1},
        {"statistic_id": "sensor.d", "has_sum": False, "mean_type": 7},
        {"statistic_id": 5, "has_sum": False, "mean_type": 1},
        "nonsense",
    ]
    found, bad = parse_metadata(reply)
    assert found == {
        "sensor.a": StatisticsMeta(
            statistic_id="sensor.a", unit="W", unit_class="power", has_sum=False, mean_type=1
        ),
        "sensor.b": StatisticsMeta(
            statistic_id="sensor.b", unit=None, unit_class=None, has_sum=True, mean_type=0
        ),
    }
    assert bad == 4
    assert parse_metadata({"not": "a list"}) == ({}, 1)


def test_rows_are_typed_aligned_and_inside_the_request() -> None:
    request = StatisticsRequest(
        statistic_ids=("sensor.a", "sensor.b"), start=T0, end=T0 + HOUR, period=FIVE_MINUTES
    )
    ms = int(T0 * 1000)
    reply = {
        "sensor.a": [
            {"start": ms + 300_000, "end": ms + 600_000, "mean": 2, "min": 1.5, "max": 3},
            {"start": float(ms), "end": ms + 300_000, "mean": 1.0},  # older releases: floats
            {"start": ms, "mean": 9.0},  # the same period again: the last one counts
            {"start": ms + 1, "mean": 1.0},  # not aligned
            {"start": ms + 3_600_000, "mean": 1.0},  # at the end: outside
            {"start": ms, "mean": True},  # not a number
            {"mean": 1.0},  # no start
            [],
        ],
        "sensor.b": [
            {"start": ms, "state": 3, "sum": 10.5, "last_reset": ms - 86_400_000},
        ],
        "sensor.c": [],  # not asked for
        "sensor.d": "rows",
    }
    rows, bad = parse_rows(reply, request)
    assert rows == {
        "sensor.a": [
            StatisticsRow(start=T0, mean=9.0),
            StatisticsRow(start=T0 + 300, mean=2.0, min=1.5, max=3.0),
        ],
        "sensor.b": [
            StatisticsRow(start=T0, state=3.0, sum=10.5, last_reset=T0 - 86_400),
        ],
    }
    assert bad == 7
    assert rows["sensor.a"][0].start_dt == datetime.fromtimestamp(T0, UTC)
    assert parse_rows(["x"], request) == ({}, 1)
