"""pytest11 entry point of yw-core: fixtures for plugin authors (filled in by yw_core.testing)."""
