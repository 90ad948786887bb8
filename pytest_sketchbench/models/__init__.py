"""Model plugins: one module per runtime behind the interface in :mod:`.base`."""
