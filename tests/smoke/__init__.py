"""The real-`hass` smoke (plain pytest, no Home Assistant test plugin): see test_real_hass_smoke.py."""
