"""evalharness: test-time compute scaling and metric-induced emergence for language models."""

__version__ = "0.1.0"
