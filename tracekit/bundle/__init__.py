"""Handover bundles: writing (redact, guard, sign, encrypt) and the receiving side."""
