"""Fixtures of the mirror tests."""

from tests.mirror.test_mirror import setup_link

__all__ = ["setup_link"]
