"""The apps the scenarios run in real ``jararaca`` processes (or in the embedded scheduler)."""
