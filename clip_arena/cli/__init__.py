"""The `clip-arena` command line: one module per subcommand, wired in clip_arena.cli.main.

Each module imports torch, pyarrow and friends inside run(), so `--help` and argument errors
answer at once."""
