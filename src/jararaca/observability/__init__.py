"""What a running process tells operators about itself: heartbeats, a log line per run and per
message, Prometheus metrics with health and readiness probes (``--metrics-port``), and
OpenTelemetry traces (``jararaca[otel]``)."""
