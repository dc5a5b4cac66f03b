"""Custom integrations (Home Assistant loads them from here)."""
