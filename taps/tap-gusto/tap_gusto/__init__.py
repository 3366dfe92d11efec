"""Singer tap for Gusto."""
