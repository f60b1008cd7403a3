"""Scripts shaped like TRL's `trl/scripts/*.py`: each module has `make_parser()` and
`main(script_args, training_args, model_args)`. `trl_basis.cli` (the `trl-basis` command) peeks at `--config` and
`--trainer`, adds the built-in task's defaults and turns bad input into one-line errors."""
