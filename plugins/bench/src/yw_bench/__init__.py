"""yw-bench: the first-party benchmark protocols, one module each (entry points in yw.benches)."""
