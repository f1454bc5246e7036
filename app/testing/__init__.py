"""Harnesses the test suite and the benchmarks share: a real `faceshot serve` process, malformed photos.

Not used by the service itself; here so that ``tests/`` and ``bench/`` both import one copy.
"""
