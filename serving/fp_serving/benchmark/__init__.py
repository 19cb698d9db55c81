"""`fraudpipe bench serving`: the load generator, the seed-style baseline server and the runner.

Nothing here is part of the serving image's job; it lives beside the service it measures.
"""
