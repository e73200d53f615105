"""`python -m opensem.cli`: the same as the `opensem` command."""

from opensem.cli import main

main()
