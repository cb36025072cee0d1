"""Operating the service: Prometheus metrics, OpenTelemetry traces, JSON log lines."""
