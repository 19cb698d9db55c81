"""`fraudpipe bench ingest`: the load generator, the plain-producer ceiling and the runner.
Development code: none of it ships with the product."""
