"""The shared vocabulary: plain data and value checks every layer may import (no hook, no runner, no engine)."""
