"""``python -m sharedrep``: the same commands as the ``sharedrep`` console script."""

from sharedrep.app.cli import main

if __name__ == "__main__":
    main(prog_name="python -m sharedrep")
