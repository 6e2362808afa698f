"""Redaction: policies, the pure redact function, statistics, pseudonyms, the leak guard."""
