"""workbench/audits/attribution."""
