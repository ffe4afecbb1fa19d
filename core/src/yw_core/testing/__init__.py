"""pytest plugin shipped with yw-core (entry point pytest11): conformance suites and fixtures."""
