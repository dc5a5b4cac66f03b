"""Constants for ha_ingestion."""

from typing import Final

DOMAIN: Final = "ha_ingestion"
