"""``python -m jararaca``: the ``jararaca`` command (also what --reload runs in its child)."""

from jararaca.cli import main

if __name__ == "__main__":
    main(prog_name="jararaca")
