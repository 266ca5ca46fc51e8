"""AI inference service: robust z-score anomaly scoring of telemetry windows over HTTP."""

__version__ = "1.0.0"
