"""``python -m gradtool``."""

from .cli.app import main

main()
