"""``python -m target_payroll_file``."""

from target_payroll_file.target import TargetPayrollFile

TargetPayrollFile.cli()
