"""The `clip-arena` command line: one module per subcommand, wired in cli.main."""
