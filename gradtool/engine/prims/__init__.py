"""The op table, one module per family.  Importing this package registers every primitive
in :data:`gradtool.engine.primitive.REGISTRY`."""

from . import elementwise, inplace, linalg, loss, nn, reduce, shape  # noqa: F401  (registers)
