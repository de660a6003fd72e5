"""workbench/audits/features."""
