"""``python -m ironbridge`` runs the command line."""

from ironbridge.cli import main

main()
