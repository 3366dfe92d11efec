"""Singer target for Moodle web services: users and rule-based compliance enrolments."""
