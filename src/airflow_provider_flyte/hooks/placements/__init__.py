"""What every engine's placement of one name shares (warm, kubernetes)."""
