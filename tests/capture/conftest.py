"""Capture test fixtures: no real waiting for the remote's commit interval in unit tests.

The fake remote's history is committed at once unless a test says otherwise
(`FakeHA.uncommitted`), so the commit wait and retry delay are set to zero here; tests that are
about them set their own values.
"""

from __future__ import annotations

import pytest

from custom_components.ha_ingestion.capture import recovery as recovery_module


@pytest.fixture(autouse=True)
def _no_commit_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recovery_module, "COMMIT_WAIT", 0.0)
    monkeypatch.setattr(recovery_module, "RETRY_DELAY", 0.0)
    monkeypatch.setattr(recovery_module, "BACKLOG_POLL", 0.0)
