"""Benchmarks for the ha_ingestion engine: `scripts/bench [name ...] [--quick]`."""
