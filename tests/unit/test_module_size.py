"""Every module of src/jararaca stays within the ~400 lines past which a module is asking to be
split by role (STYLE.md): a module that grows past it fails here rather than in a review."""

from __future__ import annotations

from pathlib import Path

LIMIT = 400
PACKAGE = Path(__file__).resolve().parents[2] / "src" / "jararaca"  # the source, wherever installed


def test_no_module_is_over_the_limit() -> None:
    sizes = {
        str(path.relative_to(PACKAGE)): len(path.read_text(encoding="utf-8").splitlines())
        for path in PACKAGE.rglob("*.py")
    }
    assert len(sizes) > 50  # the package was found, not an empty folder
    over = {name: lines for name, lines in sizes.items() if lines > LIMIT}
    assert not over, f"split these by role (over {LIMIT} lines): {over}"
