"""target_scim."""
