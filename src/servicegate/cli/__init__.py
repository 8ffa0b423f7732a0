"""The `servicegate` command line (typer)."""
