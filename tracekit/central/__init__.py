"""The central team: bundles from many tracers in one PostgreSQL database (docs/central-guide.md)."""
