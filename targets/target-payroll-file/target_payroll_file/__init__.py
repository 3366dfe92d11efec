"""Singer target: validated payroll change files, PGP-encrypted, over SFTP."""
