"""``gradtool graph``: the backward graph of an expression, as PyTorch names its nodes."""

from __future__ import annotations

import os

import click
from rich.text import Text

from ..errors import UsageError
from ..render import dot, graph_json, mermaid, tree
from ..render.graphview import DEFAULT_MAX_DEPTH, DEFAULT_MAX_LINES, build_view, record_grads
from . import console, options
from .files import require_regular, write_atomic
from .problem import from_args

IMAGE_FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf"}
TEXT_FORMATS = {".dot": "dot", ".gv": "dot", ".mmd": "mermaid", ".json": "json",
                ".txt": "tree"}


@click.command("graph", cls=options.ExprCommand,
               short_help="Print the backward graph of an expression.")
@click.argument("expr", required=False)
@options.inputs_option
@click.option("--spec", "spec_file", type=click.Path(dir_okay=False),
              help="Take the expression and inputs from a check of this spec file.")
@click.option("--check", "check_name", metavar="NAME", help="The check of --spec to draw.")
@click.option("--saved", is_flag=True, help="Show the tensors each node saved for backward.")
@click.option("--grads", is_flag=True,
              help="Run backward (seed: ones) and show the gradient arriving at each node.")
@click.option("--format", "fmt", type=click.Choice(["tree", "dot", "mermaid", "json"]),
              default=None, help="Output format (default: tree, or from -o's extension).")
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Write to a file; .svg/.png/.pdf render through Graphviz 'dot'.")
@click.option("--depth", type=click.IntRange(min=0), default=None,
              help=f"Draw nodes down to this depth (default {DEFAULT_MAX_DEPTH}).")
@click.option("--lines", "max_lines", type=click.IntRange(min=1), default=None,
              help=f"Stop the tree after this many nodes (default {DEFAULT_MAX_LINES}).")
@click.option("--full", is_flag=True, help="Draw every node: no depth, line or chain limits.")
@click.option("--no-python", is_flag=True, help="Refuse 'python:' references in --spec.")
@options.graph_seed_option
@options.common
@options.limited_command
def command(expr, inputs, spec_file, check_name, saved, grads, fmt, output, depth, max_lines,
            full, no_python, seed) -> None:
    """Print the backward graph of EXPR: from the output's grad_fn down to the
    AccumulateGrad leaves, with PyTorch's node names.

    Shared subgraphs are drawn once and referenced; long chains of the same node collapse
    into one line; the tree stops at --depth and after --lines nodes (--full: everything).

    \b
    Examples:
      gradtool graph "((x + 2) * (x + 2) * 3).mean()" -i x=[1,2,3]
      gradtool graph "x.mm(w1).clamp(min=0).mm(w2).sum()" -i 'x={shape: [4, 3]}' \\
          -i 'w1={shape: [3, 5]}' -i 'w2={shape: [5, 2]}' --saved
      gradtool graph --spec specs/autograd_basics.yaml --check mean_of_squares --grads
      gradtool graph "(x * 2).sum()" -i x=[1,2] -o graph.svg
    """
    if spec_file:
        require_regular(spec_file, "--spec")
    if output:      # before any work: -o onto a FIFO or a device would block or never end
        require_regular(os.path.realpath(output), "-o", may_be_missing=True)
    problem = from_args(expr, inputs, spec_file, check_name, seed=seed,
                        allow_python=not no_python)
    outputs = problem.run()
    if not any(t.grad_fn is not None or t.requires_grad for t in outputs):
        raise UsageError("the result has no backward graph: it does not depend on an input "
                         "that requires grad",
                         hint="inputs of floating dtype require grad unless they say "
                              "'requires_grad: false'")
    image = None
    if output:
        ext = os.path.splitext(output)[1].lower()
        if ext in IMAGE_FORMATS:
            if fmt not in (None, "dot"):
                raise UsageError(f"-o {output} writes an image; it cannot take --format {fmt}")
            image, fmt = IMAGE_FORMATS[ext], "dot"
        elif fmt is None:
            fmt = TEXT_FORMATS.get(ext, "tree")
    fmt = fmt or "tree"
    view = build_view(outputs, problem.names,
                      max_depth=DEFAULT_MAX_DEPTH if depth is None else depth,
                      max_lines=DEFAULT_MAX_LINES if max_lines is None else max_lines,
                      full=full, saved=saved, layout=fmt == "tree")
    if grads:
        record_grads(view, outputs)
    if fmt == "tree":
        if output:
            _write(output, tree.render_text(view))
        else:
            out = console.stdout()
            if out.color_system is None:        # a file, a pipe or NO_COLOR: no styles
                click.echo(tree.render_text(view), nl=False)
            else:                               # styled: 1,000 lines per print call
                lines = tree.render_lines(view)
                for start in range(0, len(lines), 1000):
                    out.print(Text("\n").join(lines[start:start + 1000]))
        return
    text = {"dot": dot.render_dot, "mermaid": mermaid.render_mermaid,
            "json": graph_json.render_json}[fmt](view)
    if image:
        dot.render_image(text, output, image)
        console.stderr().print(f"wrote {output}")
    elif output:
        _write(output, text)
    else:
        click.echo(text, nl=False)


def _write(path: str, text: str) -> None:
    write_atomic(path, text, option="-o")
