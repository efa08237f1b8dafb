"""What a running process tells operators about itself: heartbeats (and, later, metrics,
health endpoints and traces)."""
