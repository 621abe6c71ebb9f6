"""Readers and writers of structured formats (canonical import rows, export files)."""
