"""Weather platform: mirrors of the remote's weather entities; forecasts read over the link.

`weather.get_forecasts` and the frontend's forecast subscription are answered with the remote's
`get_forecasts` response, as the remote shows it (in its units: nothing is converted here); a
subscription here is refreshed with each state change of the remote entity.
"""

from __future__ import annotations

from typing import Any

from homeassistant.components.weather import WeatherEntity
from homeassistant.core import Context
from homeassistant.exceptions import HomeAssistantError

from .client import RemoteState
from .const import LOGGER
from .mirror.entity import NativeMirror, feature_flags
from .mirror.platform import PARALLEL_UPDATES, native_setup

__all__ = ["PARALLEL_UPDATES", "WeatherMirror", "async_setup_entry"]


class WeatherMirror(NativeMirror, WeatherEntity):  # type: ignore[misc,unused-ignore]  # state: the remote's
    """A remote weather entity."""

    _features = feature_flags("weather")

    async def _forecast(self, kind: str) -> Any:
        response = await self._forward("get_forecasts", {"type": kind}, response=True, read=True)
        forecast = response.get("forecast") if isinstance(response, dict) else None
        if not isinstance(forecast, list):
            self._bad("forecast", forecast)
            return []
        return [entry for entry in forecast if isinstance(entry, dict)]

    async def async_forecast_daily(self) -> Any:
        """The remote's daily forecast."""
        return await self._forecast("daily")

    async def async_forecast_hourly(self) -> Any:
        """The remote's hourly forecast."""
        return await self._forecast("hourly")

    async def async_forecast_twice_daily(self) -> Any:
        """The remote's twice-daily forecast."""
        return await self._forecast("twice_daily")

    def _convert_forecast(self, native_forecast_list: Any) -> Any:  # type: ignore[misc,unused-ignore]  # final: the remote converted it
        """As the remote answered it (already in the remote's units)."""
        return list(native_forecast_list)

    def set_remote(self, remote: RemoteState | None, *, link_down: Context | None = None) -> None:
        """The remote's state; a forecast subscription here is refreshed with it."""
        super().set_remote(remote, link_down=link_down)
        if remote is not None and self._added and any(self._forecast_listeners.values()):
            self._background(self._refresh_forecasts(), "forecast refresh")

    async def _refresh_forecasts(self) -> None:
        try:
            await self.async_update_listeners(None)
        except HomeAssistantError as err:
            LOGGER.debug("Forecast of %s not refreshed: %s", self.entity_id, err)


async_setup_entry = native_setup(WeatherMirror)
