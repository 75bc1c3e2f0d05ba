"""``gradtool ops``: the built-in functions a spec may call, with arity and the modes of
differentiation they support, read from the op table (``primitive.REGISTRY``)."""

from __future__ import annotations

import inspect
import json

import click
import numpy as np
from rich.table import Table
from rich.text import Text

from ..engine import primitive
from ..engine.dtypes import float32
from ..engine.primitive import INTERCEPTORS, REGISTRY
from ..engine.tensor import _make
from ..errors import UsageError
from . import console, options

JSON_VERSION = 1
TENSOR_PARAMS = ("input", "other", "mat2", "vec", "vec2", "tensors", "condition")


def primitive_modes(prim) -> dict:
    """Which derivatives a primitive's table entry provides."""
    reverse = bool(prim.differentiable) and any(r is not None for r in _rules(prim.vjps))
    forward = bool(prim.differentiable) and any(r is not None for r in _rules(prim.jvps))
    return {"reverse": reverse, "forward": forward,
            # VJP rules are written with operators and backend functions, so they run on
            # Tensors too (create_graph): differentiable again, unless the entry says not
            "second_order": reverse and getattr(prim, "second_order", True)}


def _rules(rules):
    if isinstance(rules, primitive.Variadic):
        return [rules.rule]
    return list(rules or ())


def _samples(fn) -> list:
    """Argument lists to try when tracing which primitives a composite function calls."""
    square = _make(np.array([[0.7, 1.3], [1.9, 0.4]]))
    vector = _make(np.array([0.6, 1.1]))
    return [(square,), (square, square), (vector, vector), (square, vector), (square, 2.0),
            (square, 0), (square, 0, 1), ([square, square],), (square > 1, square, square),
            (square, (4,)), (square, (3, 2, 2)), (square, float32)]


def traced_primitives(fn) -> list | None:
    """The primitives ``fn`` applies on small sample inputs (the first sample that records
    any; ``[]`` when samples run but record none, None when no sample runs)."""
    ran = False
    for args in _samples(fn):
        seen: list = []

        def record(prim, call_args, params):
            # runs within this iteration only (removed below), so it sees this `seen`
            if prim.name not in seen:  # noqa: B023
                seen.append(prim.name)  # noqa: B023
            return primitive.apply(prim, call_args, params)

        INTERCEPTORS.append(record)
        try:
            with np.errstate(all="ignore"):
                fn(*args)
        except Exception:  # noqa: BLE001  (guessed arguments: any failure means "next sample")
            continue
        finally:
            INTERCEPTORS.remove(record)
        if seen:
            return seen
        ran = True
    return [] if ran else None


def builtin_rows() -> list[dict]:
    rows = []
    from ..spec.evaluate import BUILTINS     # what a spec may call (spec/allowed.py)
    for name in sorted(BUILTINS):
        fn = BUILTINS[name]
        params = list(inspect.signature(fn).parameters.values())
        required = [p for p in params if p.default is inspect.Parameter.empty
                    and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        variadic = any(p.kind is p.VAR_POSITIONAL for p in params)
        arity = len(required)
        if params and params[0].name == "tensors":
            arity_text = "n"
        else:
            arity_text = f"{arity}+" if variadic else str(arity)
        if not params or params[0].name not in TENSOR_PARAMS:
            rows.append({"name": name, "arity": arity_text, "kind": "constructor",
                         "primitives": [], "nodes": [], "reverse": None, "forward": None,
                         "second_order": None})
            continue
        prims = [name] if name in REGISTRY else traced_primitives(fn)
        if prims == []:              # ran, recorded nothing: integer results, *_like
            kind = "no derivative"
        else:
            kind = "primitive" if name in REGISTRY else "composite"
        prims = prims or []
        entries = [REGISTRY[p] for p in prims if p in REGISTRY]
        modes = [primitive_modes(p) for p in entries]
        rows.append({
            "name": name, "arity": arity_text, "kind": kind,
            "primitives": prims,
            "nodes": sorted({p.node_name for p in entries if primitive_modes(p)["reverse"]}),
            **{mode: (all(m[mode] for m in modes) if modes else None)
               for mode in ("reverse", "forward", "second_order")},
        })
    return rows


def _mark(value) -> Text:
    if value is None:
        return Text("–", style="dim")
    return Text("✓", style="green") if value else Text("✗", style="red")


@click.command("ops", short_help="List built-in functions, their arity and derivative modes.")
@options.format_option("table", "json", default="table")
@click.option("-k", "pattern", metavar="TEXT", help="Only functions whose name contains TEXT.")
@options.common
def command(fmt, pattern) -> None:
    """List the built-in functions a spec may call: arity, the primitives they run and the
    modes (reverse, forward, second order) their derivatives support.

    \b
    Examples:
      gradtool ops
      gradtool ops -k clamp
      gradtool ops --format json
    """
    every = builtin_rows()
    rows = [r for r in every if not pattern or pattern.lower() in r["name"].lower()]
    if pattern and not rows:        # as check's -k: a filter matching nothing is an error
        import difflib
        near = difflib.get_close_matches(pattern, [r["name"] for r in every], n=3)
        raise UsageError(f"-k {pattern!r} matched none of the {len(every)} functions",
                         hint=f"did you mean {', '.join(near)}?" if near else
                         "gradtool ops lists them all")
    if fmt == "json":
        click.echo(json.dumps({"version": JSON_VERSION, "functions": rows}, indent=2))
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("function", "arity", "kind", "backward nodes", "reverse", "forward",
                   "2nd order"):
        table.add_column(column, justify="center" if column in
                         ("arity", "reverse", "forward", "2nd order") else "left")
    for row in rows:
        table.add_row(row["name"], row["arity"], row["kind"], ", ".join(row["nodes"]) or "–",
                      _mark(row["reverse"]), _mark(row["forward"]),
                      _mark(row["second_order"]))
    out = console.stdout()
    out.print(table)
    out.print(Text(f"{len(rows)} function{'' if len(rows) == 1 else 's'}; tensor methods "
                   "(x.sum(), x.clamp(min=0), ...) follow the same rules", style="dim"))
