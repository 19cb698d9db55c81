"""`fraudpipe bench serving`: the load generator, the seed-style baseline server, the synthetic
stand-in model and the runner. Development code: none of it is in the serving image."""
