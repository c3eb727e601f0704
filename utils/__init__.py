"""Shared engine, metrics, logging, DDP helpers and prediction writers (see docs/design/architecture.md)."""
