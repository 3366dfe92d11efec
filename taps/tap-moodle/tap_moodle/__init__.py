"""Singer tap for Moodle."""
