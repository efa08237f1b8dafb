"""Scheduling at run time: pure planning, the beat, BeatWorker and the embedded Scheduler."""
