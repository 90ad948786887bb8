"""Reporting: everything here reads the session's plain-dict results; nothing measures."""
