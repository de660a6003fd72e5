"""workbench/audits/ensemble."""
