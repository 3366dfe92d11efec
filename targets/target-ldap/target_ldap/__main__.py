"""``python -m target_ldap``."""

from target_ldap.target import TargetLDAP

TargetLDAP.cli()
