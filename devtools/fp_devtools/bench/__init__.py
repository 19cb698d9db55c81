"""`fraudpipe bench operator|serving`: benchmarks of the product images' code, run from .venv.

Nothing here ships in an image: the operator benchmark and its real-server harness (shared with
the operator's integration tests), and the serving benchmark with its load generator, baseline
server and synthetic stand-in model (shared with the serving tests).
"""
