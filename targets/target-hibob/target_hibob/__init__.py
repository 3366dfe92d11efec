"""target-hibob: new hires into HiBob."""
