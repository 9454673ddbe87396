"""A task process's environment and children: each change it makes comes with its undo."""
