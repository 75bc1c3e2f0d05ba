"""The JSON Schema is generated from the loader's own table: both accept the same files."""

from pathlib import Path

import pytest

from gradtool.spec import load, schema
from gradtool.spec.load import SECTION_LOADERS
from gradtool.spec.yaml_source import load_data

from .helpers import FIXTURES

jsonschema = pytest.importorskip("jsonschema")

ROOT = Path(__file__).resolve().parents[2]
VALID = sorted(ROOT.glob("specs/**/*.yaml")) + sorted(ROOT.glob("specs/**/*.yml")) + \
    sorted(FIXTURES.glob("*.yaml"))


@pytest.fixture(scope="module")
def validator():
    document = schema.json_schema()
    jsonschema.Draft202012Validator.check_schema(document)
    return jsonschema.Draft202012Validator(document)


def test_every_top_level_key_has_a_loader():
    assert list(SECTION_LOADERS) == list(schema.TOP_LEVEL)


@pytest.mark.parametrize("path", VALID, ids=lambda p: str(p.relative_to(ROOT)))
def test_spec_files_match_the_schema(validator, path, fixtures_on_path):
    errors = [e.message for e in validator.iter_errors(load_data(path.read_text(), str(path)))]
    assert errors == []
    load(path)           # and the loader agrees


def test_all_keys_fixture_uses_every_key():
    data = load_data((FIXTURES / "all_keys.yaml").read_text())
    assert set(data) == set(schema.TOP_LEVEL)
    assert set(data["defaults"]) == set(schema.CONFIG)
    check_keys = set().union(*(set(c) for c in data["checks"]))
    assert check_keys == set(schema.CHECK.fields)
    input_keys = set().union(*(set(i) for i in data["checks"][0]["inputs"].values()))
    assert input_keys == set(schema.INPUT.fields)
    assert set(data["functions"]["Scale"]) | {"python"} == set(schema.FUNCTION.fields)
    assert set(data["modules"]["scale"]) == set(schema.PYTHON_MODULE.fields)


@pytest.mark.parametrize("text", [
    "checks: [{name: a, expr: x, inputs: {x: 1.0}, colour: red}]",
    "checks: [{name: a, expr: x, inputs: {x: {shape: 3}}}]",
    "checks: [{name: a, expr: x, inputs: {x: 1.0}, method: centrl}]",
    "checks: [{name: a, expr: x, inputs: {x: 1.0}, eps: 0}]",
    "checks: [{expr: x, inputs: {x: 1.0}}]",
    "defaults: {gradgrad: 3}\nchecks: [{name: a, expr: x, inputs: {x: 1.0}}]",
    "functions: {F: {argz: [x]}}\nchecks: [{name: a, expr: x, inputs: {x: 1.0}}]",
    "checks: [{name: a, expr: x, inputs: {1x: 1.0}}]",
    "modules: {m: {Linear: 3}}\nchecks: [{name: a, expr: x, inputs: {x: 1.0}}]",
    "modules: {m: {Linear: [1, 2], ReLU: []}}\nchecks: [{name: a, expr: x, inputs: {x: 1.0}}]",
    "modules: {m: 3}\nchecks: [{name: a, expr: x, inputs: {x: 1.0}}]",
    "modules: {m: {Sequential: ReLU}}\nchecks: [{name: a, expr: x, inputs: {x: 1.0}}]",
    "modules: {m: {Sequential: [{Linear: [{a: 1}]}]}}\n"
    "checks: [{name: a, expr: x, inputs: {x: 1.0}}]",
    "modules: {m: {python: 'a:B', argz: []}}\nchecks: [{name: a, expr: x, inputs: {x: 1.0}}]",
    "modules: {m: {python: 'a:B', args: 3}}\nchecks: [{name: a, expr: x, inputs: {x: 1.0}}]",
    "checks: [{name: a, expr: x, inputs: {x: 1.0}, wrt: ['net..w']}]",
])
def test_schema_and_loader_both_refuse(validator, text):
    from gradtool.errors import SpecError
    from gradtool.spec import loads
    assert list(validator.iter_errors(load_data(text)))
    with pytest.raises(SpecError):
        loads(text)


@pytest.mark.parametrize("module", [
    "ReLU", "{Linear: [2, 3]}", "{Conv2d: {in_channels: 1, out_channels: 2, kernel_size: [3, "
    "3]}}", "{Sequential: [{Linear: [2, 3]}, Tanh, {Sequential: [ReLU]}]}",
    "{python: 'mypkg.ops:Scale', args: [2], kwargs: {shift: 0.5}}",
])
def test_schema_accepts_every_module_form(validator, module):
    text = f"modules: {{m: {module}}}\nchecks: [{{name: a, expr: m(x), inputs: {{x: 1.0}}}}]"
    assert [e.message for e in validator.iter_errors(load_data(text))] == []


def test_descriptions_come_from_the_table():
    document = schema.json_schema()
    check = document["properties"]["checks"]["items"]
    assert check["properties"]["eps"]["description"] == schema.CONFIG["eps"].description
    assert check["required"] == ["name", "expr", "inputs"]
    assert document["properties"]["defaults"]["properties"]["method"]["enum"] == \
        list(schema.METHODS)


#: structural variants: the schema and the loader must agree on each (the loader also
#: checks what no JSON Schema can: names in expressions, ragged values, low < high)
CHECK_F = "checks: [{name: a, expr: F(x), inputs: {x: 1.0}}]"
BASE = "checks: [{name: a, expr: x.sum() + y, inputs: {x: INPUT, y: 1.0}KEYS}]"
CORPUS = [
    # (top-level text or a BASE with INPUT/KEYS filled in, valid?)
    ("checks: []", False),
    ("version: 2\nchecks: [{name: a, expr: x, inputs: {x: 1.0}}]", False),
    ("version: 1\nchecks: [{name: a, expr: x, inputs: {x: 1.0}}]", True),
    ("version: '1'\nchecks: [{name: a, expr: x, inputs: {x: 1.0}}]", False),
    ("version: 1.0\nchecks: [{name: a, expr: x, inputs: {x: 1.0}}]", True),
    ("version: 1.5\nchecks: [{name: a, expr: x, inputs: {x: 1.0}}]", False),
    ("{shape: [2.0]}", True),
    ("{shape: [2], value: [1.0, 2.0]}", False),
    ("{linspace: [0, 1, 3], value: [1.0, 2.0]}", False),
    ("{linspace: [0, 1, 3], shape: [3]}", False),
    ("{linspace: [0, 1, 3], init: uniform}", False),
    ("{value: [1.0], init: normal}", False),
    ("{value: [1.0], avoid: [0.0]}", False),
    ("{value: [1.0], dtype: float32}", True),
    ("{shape: [2], low: 0.5}", False),
    ("{shape: [2], init: uniform, low: 0.5}", True),
    ("{shape: [2], init: normal, low: 0.5}", False),
    ("{shape: [2], mean: 1.0}", True),
    ("{shape: [2], init: uniform, std: 1.0}", False),
    ("{shape: [2], dtype: int64, low: 1}", True),
    ("{shape: [2], dtype: int64, requires_grad: true}", False),
    ("{shape: [2], dtype: int64, requires_grad: false}", True),
    ("{shape: [2], dtype: bool, positive: true}", False),
    ("{shape: [2], dtype: float64, positive: true}", True),
    ("{shape: [2], dtype: complex128, positive: true}", False),
    ("{shape: [2], dtype: complex128, positive: false}", True),
    ("{shape: [2], dtype: int64, margin: 0.5}", False),
    ("{linspace: [0, 1, 3]}", True),
    ("{shape: [2], init: arange}", True),
    ("1.0|, skip: true", True),
    ("1.0|, skip: false", True),
    ("1.0|, skip: not yet", True),
    ("1.0|, skip: 2024", True),
    ("1.0|, skip: null", False),
    ("1.0|, name: 1", True),
    ("1.0|, name: ''", False),
    ("1.0|, name: ' '", False),
    ("1.0|, name: null", False),
    ("1.0|, name: [a]", False),
    ("1.0|, tags: [fast, 2]", True),
    ("1.0|, tags: fast", False),
    ("1.0|, eps: 0", False),
    ("1.0|, atol: 0", True),
    ("1.0|, seed: -1", False),
    ("1.0|, expect: maybe", False),
    ("1.0|, mode: fast", True),
    ("1.0|, wrt: []", False),
    ("1.0|, seed: 9223372036854775807", True),
    ("1.0|, seed: 9223372036854775808", False),
    ("1.0|, wrt: [x]", True),
    ("{linspace: [0, 1, 2.5]}", False),
    ("{linspace: [0, 1, -1]}", False),
    ("{linspace: [0, 1, 4.0]}", True),
    ("functions: {F: {args: [x], forward: x, backward: {x: grad}}}\n" + CHECK_F, True),
    ("functions: {F: {args: [x], forward: x}}\n" + CHECK_F, False),
    ("functions: {F: {forward: x, backward: {x: grad}}}\n" + CHECK_F, False),
    ("functions: {F: {python: 'mypkg.ops:Scale', forward: x}}\n" + CHECK_F, False),
    ("functions: {F: {python: 'mypkg.ops:Scale', nondiff: [x]}}\n" + CHECK_F, False),
    ("functions: {F: {}}\n" + CHECK_F, False),
]


def _corpus_text(variant: str) -> str:
    if variant.startswith(("checks", "version", "functions")):
        return variant
    value, _, keys = variant.partition("|")
    text = BASE.replace("INPUT", value).replace("KEYS", keys)
    return text.replace("name: a, expr", "expr") if "name:" in keys else text


@pytest.mark.parametrize("variant, valid", CORPUS, ids=[v for v, _ in CORPUS])
def test_schema_and_loader_agree(validator, variant, valid):
    from gradtool.errors import SpecError
    from gradtool.spec import loads
    text = _corpus_text(variant)
    schema_errors = [e.message for e in validator.iter_errors(load_data(text))]
    try:
        loads(text)
        loader_ok = True
    except SpecError:
        loader_ok = False
    assert (not schema_errors, loader_ok) == (valid, valid), schema_errors


def test_skip_true_is_a_skip_without_reason_and_false_runs():
    from gradtool.runner import Selected
    from gradtool.spec import loads
    spec = loads(_corpus_text("1.0|, skip: true"))
    assert Selected("a.yaml", spec.checks[0]).skip == "skipped"
    spec = loads(_corpus_text("1.0|, skip: false"))
    assert Selected("a.yaml", spec.checks[0]).skip is None
