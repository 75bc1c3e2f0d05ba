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
