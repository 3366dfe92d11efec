"""Singer target for a Gusto-style payroll REST API."""
