"""Message brokers: publish with confirms, consume with manual ack, dead-letter."""
