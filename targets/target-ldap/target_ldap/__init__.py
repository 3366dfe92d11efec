"""target_ldap."""
