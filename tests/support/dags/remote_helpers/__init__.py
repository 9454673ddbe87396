"""A helper package next to the DAG files: remote workers must import it from the code bundle."""


def square(x: int) -> int:
    return x * x


def describe(total: int, world_size: int) -> dict[str, int]:
    return {"total": total, "world_size": world_size}
