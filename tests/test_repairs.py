"""Repairs: a link that gave up can be retried; a token sent in clear text is reported."""

from __future__ import annotations

from unittest.mock import patch

from homeassistant.config_entries import ConfigEntryDisabler
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ha_ingestion.client import LinkState
from custom_components.ha_ingestion.const import CONF_MAX_ATTEMPTS, DOMAIN
from custom_components.ha_ingestion.repairs import async_create_fix_flow

from .conftest import link_state, wait_for
from .fake_ha import FakeHA


async def test_failed_link_repair_retries(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    fake_ha: FakeHA,
    issue_registry: ir.IssueRegistry,
) -> None:
    await fake_ha.go_down()
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=mock_config_entry.title,
        unique_id=mock_config_entry.unique_id,
        data=mock_config_entry.data,
        options={**mock_config_entry.options, CONF_MAX_ATTEMPTS: 2},
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await wait_for(lambda: link_state(entry) is LinkState.FAILED)
    await hass.async_block_till_done()
    issue_id = f"link_failed_{entry.entry_id}"
    issue = issue_registry.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.is_fixable
    assert issue.translation_placeholders["attempts"] == "2"

    await fake_ha.go_up()
    flow = await async_create_fix_flow(hass, issue_id, issue.data)
    flow.hass = hass
    flow.issue_id = issue_id
    result = await flow.async_step_init()
    assert result["step_id"] == "confirm"
    result = await flow.async_step_confirm({})
    assert result["type"] == "create_entry"
    await wait_for(lambda: link_state(entry) is LinkState.CONNECTED)
    await hass.async_block_till_done()
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None
    await hass.config_entries.async_unload(entry.entry_id)


async def test_fix_flow_for_an_unloaded_entry_aborts(hass: HomeAssistant) -> None:
    flow = await async_create_fix_flow(hass, "link_failed_x", {"entry_id": "missing"})
    flow.hass = hass
    result = await flow.async_step_init()
    assert result["type"] == "abort"
    assert result["reason"] == "entry_not_loaded"


async def test_insecure_connection_issue(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    issue_registry: ir.IssueRegistry,
) -> None:
    mock_config_entry.add_to_hass(hass)
    with patch("custom_components.ha_ingestion.is_insecure_remote", return_value=True):
        assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
        await hass.async_block_till_done()
    issue_id = f"insecure_connection_{mock_config_entry.entry_id}"
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is not None

    # back to a secure setting: the issue goes away on the next setup
    assert await hass.config_entries.async_reload(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None

    await hass.config_entries.async_remove(mock_config_entry.entry_id)
    await hass.async_block_till_done()


async def _failed_link(
    hass: HomeAssistant, base: MockConfigEntry, fake_ha: FakeHA
) -> MockConfigEntry:
    """An entry whose link gave up (max attempts 2, remote down): it has a link_failed repair."""
    await fake_ha.go_down()
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=base.title,
        unique_id=base.unique_id,
        data=base.data,
        options={**base.options, CONF_MAX_ATTEMPTS: 2},
    )
    entry.add_to_hass(hass)
    with patch("custom_components.ha_ingestion.is_insecure_remote", return_value=True):
        assert await hass.config_entries.async_setup(entry.entry_id)
    await wait_for(lambda: link_state(entry) is LinkState.FAILED)
    await hass.async_block_till_done()
    return entry


def _issues_of(issue_registry: ir.IssueRegistry, entry: MockConfigEntry) -> set[str]:
    return {
        issue_id
        for domain, issue_id in issue_registry.issues
        if domain == DOMAIN and issue_id.endswith(entry.entry_id)
    }


async def test_repairs_removed_when_entry_is_disabled(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    fake_ha: FakeHA,
    issue_registry: ir.IssueRegistry,
) -> None:
    entry = await _failed_link(hass, mock_config_entry, fake_ha)
    other = MockConfigEntry(domain="other_domain", title="x")
    other.add_to_hass(hass)
    ir.async_create_issue(
        hass,
        "other_domain",
        f"unrelated_{entry.entry_id}",
        is_fixable=False,
        severity=ir.IssueSeverity.WARNING,
        translation_key="x",
    )
    assert _issues_of(issue_registry, entry) == {
        f"link_failed_{entry.entry_id}",
        f"insecure_connection_{entry.entry_id}",
    }

    await hass.config_entries.async_set_disabled_by(entry.entry_id, ConfigEntryDisabler.USER)
    await hass.async_block_till_done()

    assert _issues_of(issue_registry, entry) == set()
    # Another integration's issues are not ours to delete.
    assert issue_registry.async_get_issue("other_domain", f"unrelated_{entry.entry_id}")


async def test_repairs_removed_when_entry_is_removed(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    fake_ha: FakeHA,
    issue_registry: ir.IssueRegistry,
) -> None:
    entry = await _failed_link(hass, mock_config_entry, fake_ha)
    assert len(_issues_of(issue_registry, entry)) == 2

    assert await hass.config_entries.async_remove(entry.entry_id)
    await hass.async_block_till_done()

    assert _issues_of(issue_registry, entry) == set()
