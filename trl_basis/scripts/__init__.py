"""Scripts shaped like TRL's `trl/scripts/*.py`: each module has `make_parser()` and
`main(script_args, training_args, model_args)`. `trl_basis.cli` (the `trl-basis` command) wraps them with a
`--trainer` pre-pass, defaults for the built-in task and one-line errors."""
