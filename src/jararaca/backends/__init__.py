"""State backends: schedule state, fire claims, run leases and the delayed queue."""
