"""``python -m map_hr``: the same as the ``map-hr`` command."""

from map_hr.cli import main

main()
