"""`python -m trl_basis ...` is the `trl-basis` command (also `accelerate launch -m trl_basis train ...`)."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
