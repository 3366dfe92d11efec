"""map_hr."""
