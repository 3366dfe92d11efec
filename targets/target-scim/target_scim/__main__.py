"""``python -m target_scim``."""

from target_scim.target import TargetSCIM

TargetSCIM.cli()
