"""The `imagenet-sketch` command: `main` dispatches to one module per subcommand in `commands`."""
