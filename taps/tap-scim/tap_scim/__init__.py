"""Singer tap for any SCIM 2.0 service provider: read back Users and Groups."""
