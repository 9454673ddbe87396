"""The text of errors, for every layer: an exception's chain, text kept past an engine's teardown, and the
fix for a missing Java (quoted by the Spark hook and by the runner's diagnosis alike)."""

from __future__ import annotations

from collections.abc import Iterator

#: The fix for a missing or broken Java, in every message that names that cause.
INSTALL_JAVA = ("install Java 17 or newer (e.g. apt-get install openjdk-17-jre-headless) or set JAVA_HOME to a "
                "Java installation")
NO_JAVA = f"Spark could not start its JVM: Java is missing or broken on this machine. Fix: {INSTALL_JAVA}"


def exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, then what it was raised from or during (``__cause__``, else ``__context__``), each once."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def keep_message(exc: BaseException, text: str) -> None:
    """Make ``str(exc)`` return ``text`` from now on, keeping the exception's type as the user sees it.

    For errors whose ``str()`` asks a live engine (PySpark's ``CapturedException`` and py4j's
    ``Py4JJavaError`` read the JVM): read while the engine is up, the text survives its teardown.
    ``exc`` becomes an instance of a subclass of its own class that carries the same name, module and
    qualified name, so ``isinstance``, ``except`` clauses and the name a traceback prints are unchanged.
    """
    kind = type(exc)
    if not kind.__dict__.get("_kept_message_class", False):
        kind = _kept_message_class(kind)
        exc.__class__ = kind
    exc._kept_message = text  # type: ignore[attr-defined]


_KEPT_CLASSES: dict[type, type] = {}


def _kept_message_class(kind: type[BaseException]) -> type[BaseException]:
    kept = _KEPT_CLASSES.get(kind)
    if kept is None:
        kept = type(kind.__name__, (kind,), {
            "__str__": _kept_str, "__module__": kind.__module__, "__qualname__": kind.__qualname__,
            "__doc__": kind.__doc__, "_kept_message_class": True,
        })
        _KEPT_CLASSES[kind] = kept
    return kept


def _kept_str(self: BaseException) -> str:
    return str(self._kept_message)  # type: ignore[attr-defined]
