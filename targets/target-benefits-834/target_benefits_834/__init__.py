"""Singer target: X12 834 005010X220A1 enrolment files, validated with pyx12, PGP + SFTP."""
