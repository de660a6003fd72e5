"""workbench/audits/overview."""
