"""FraudPipeline: the shared package.

Holds what every component agrees on (the FraudPipeline spec, the transaction schema, the feature
definitions), the `fraudpipe` command line, and the dev servers used by tests and people.
"""

__version__ = "0.1.0"
