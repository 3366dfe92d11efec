"""Singer tap for LDAP directories (OpenLDAP, Active Directory): read back people and groups."""
