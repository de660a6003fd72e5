"""workbench/audits."""
