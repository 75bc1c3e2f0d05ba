"""Property: however an expression is written in YAML (plain, quoted, block, folded, with
any spacing), an error points at the offending token in the file."""

from hypothesis import given, settings
from hypothesis import strategies as st

from gradtool.errors import SpecError
from gradtool.spec import loads

TOKEN = "zzq"


def _location_of(text: str, token: str) -> str:
    index = text.index(token)
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    return f"a.yaml:{line}:{column}"


@st.composite
def expressions(draw):
    """A single-line expression with one unknown name, and its YAML spelling."""
    parts = draw(st.lists(st.sampled_from(["x", "exp(x)", "x.sum()", "(x * 2)", "x[0]"]),
                          min_size=1, max_size=4))
    where = draw(st.integers(0, len(parts)))
    parts.insert(where, TOKEN)
    spaces = draw(st.sampled_from(["", " ", "  "]))
    return f"{spaces}+{spaces}".join(parts)


@settings(max_examples=60, deadline=None)
@given(expressions(), st.sampled_from(["plain", "single", "double", "literal", "folded"]),
       st.integers(2, 6), st.booleans())
def test_error_points_at_the_token(expr, style, indent, program):
    pad = " " * indent
    if style == "plain":
        value = expr
    elif style == "single":
        value = "'" + expr + "'"
    elif style == "double":
        value = '"' + expr + '"'
    else:
        body = f"h = x\n{expr}" if program and style == "literal" else expr
        marker = "|" if style == "literal" else ">"
        lines = "\n".join(pad + "    " + line for line in body.split("\n"))
        value = f"{marker}\n{lines}"
    text = f"checks:\n{pad}- name: c\n{pad}  expr: {value}\n{pad}  inputs: {{x: [1.0]}}\n"
    try:
        loads(text, "a.yaml")
    except SpecError as error:
        assert f"{error.location}" == _location_of(text, TOKEN), text
        assert error.message == f"unknown name '{TOKEN}'"
    else:
        raise AssertionError("no error")
