"""The `frpo` command line: wiring only, no logic of its own."""
