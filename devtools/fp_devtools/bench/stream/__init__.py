"""`fraudpipe bench stream`: the streaming job end to end on this machine (broker included), embedded and
remote scoring, at full speed and at a fixed rate, against a seed-style consumer. Development code."""
