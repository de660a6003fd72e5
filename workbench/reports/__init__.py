"""workbench/reports."""
