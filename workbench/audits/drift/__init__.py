"""workbench/audits/drift."""
