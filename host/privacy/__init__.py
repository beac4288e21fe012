"""What the smashed data gives away: the audit (audit.py) and its report (report.py)."""
