"""Singer tap for HiBob."""
