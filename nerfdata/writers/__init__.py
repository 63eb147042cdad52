"""Dataset formats on disk; every file is written atomically."""
