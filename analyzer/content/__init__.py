"""Multi-modal content analysis: pluggable components, each filling one report section (report.py)."""
