"""One module per scenario; each exposes ``run(profile) -> list[Section]``."""
