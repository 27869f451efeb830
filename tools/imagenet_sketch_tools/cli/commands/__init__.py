"""One module per `imagenet-sketch` subcommand: each has `add_to(commands)`, which adds its parser and `run`."""
