"""Scheduling: the ``@ScheduledAction`` decorator, planning, the beat and the embedded scheduler."""
