"""The package's shape: ``gradtool.<name>`` is the subpackage or module of that name."""

import ast
import subprocess
import sys
from pathlib import Path

import gradtool

PACKAGE_ATTRIBUTES = """
import importlib, pkgutil, sys
import gradtool
for info in pkgutil.walk_packages(gradtool.__path__, "gradtool."):
    if info.name != "gradtool.__main__":  # runs the CLI
        importlib.import_module(info.name)
wrong = []
for info in pkgutil.iter_modules(gradtool.__path__):
    module = sys.modules.get("gradtool." + info.name)
    bound = getattr(gradtool, info.name, module)
    if module is not None and bound is not module:
        wrong.append(f"gradtool.{info.name} is {bound!r}, not the module")
print("\\n".join(wrong))
"""


def test_every_package_attribute_is_that_package():
    # a fresh interpreter: the order of imports is the one a user gets
    done = subprocess.run([sys.executable, "-c", PACKAGE_ATTRIBUTES], capture_output=True,
                          text=True, check=True)
    assert done.stdout.strip() == ""


def test_a_submodule_of_the_checker_imports_by_its_dotted_path():
    done = subprocess.run([sys.executable, "-c",
                           "import gradtool.checker.numeric as numeric; import gradtool as gt;"
                           "print(callable(numeric.numerical_jacobian), callable(gt.check))"],
                          capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "True"]


# Which layer may import which (``errors`` and ``_version`` are below everything). A module
# outside every listed layer, or an import that is not on an arrow, fails the test: a new
# layer is added here, with its arrows, on purpose.
BASE = {"errors", "_version"}
ARROWS = {
    "engine": set(),
    "checker": {"engine"},
    "nn": {"engine"},
    "optim": {"engine", "nn"},
    "data": {"engine"},
    "utils": {"data", "engine"},
    "autograd": {"engine", "checker"},
    "spec": {"checker", "engine", "nn"},
    "render": {"checker", "engine"},
    "runner": {"spec", "checker", "render", "engine", "nn"},
    "pytest_plugin": {"runner", "spec", "checker", "render", "engine"},
    "parallel": {"runner", "render"},
    "sharding": set(),
    "cli": {"runner", "spec", "checker", "render", "engine", "nn", "optim", "data", "utils",
            "autograd", "parallel", "sharding"},
    "__main__": {"cli"},
    # the package face: the library, not the front ends (gt.spec is imported on first use)
    "": {"engine", "checker", "nn", "optim", "data", "utils", "autograd", "spec"},
}
PACKAGE = Path(gradtool.__file__).resolve().parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _targets(node, module: str, is_package: bool) -> list[str]:
    """The gradtool modules an import statement loads."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name.split(".")[0] == "gradtool"]
    if node.level:
        package = module.split(".") if is_package else module.split(".")[:-1]
        base = package[:len(package) - node.level + 1]
        source = ".".join(base + ([node.module] if node.module else []))
    else:
        source = node.module or ""
    if source.split(".")[0] != "gradtool":
        return []
    submodules = [f"{source}.{alias.name}" for alias in node.names
                  if _is_module(f"{source}.{alias.name}")]
    return submodules if submodules and node.module is None else [source, *submodules]


def _imports(path: Path, module_level_only: bool):
    """(import statement, target module) pairs of one file; module level: what runs on import
    (not function bodies, not ``if TYPE_CHECKING:`` blocks)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    module = _module_name(path)
    is_package = path.name == "__init__.py"
    stack = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for target in _targets(node, module, is_package):
                yield node, target
            continue
        if module_level_only and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                   ast.Lambda)):
            continue
        if (module_level_only and isinstance(node, ast.If)
                and "TYPE_CHECKING" in ast.unparse(node.test)):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _files():
    return sorted(PACKAGE.rglob("*.py"))


def test_imports_follow_the_layer_arrows():
    wrong = []
    for path in _files():
        module = _module_name(path)
        layer = _layer(module)
        assert layer in ARROWS or layer in BASE, f"{module}: a module outside every layer"
        allowed = ARROWS.get(layer, set()) | BASE | {layer}
        for node, target in _imports(path, module_level_only=False):
            if _layer(target) not in allowed:
                wrong.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: "
                             f"{layer or 'gradtool'} imports {target}")
    assert wrong == []


def test_no_import_cycles_at_module_level():
    graph = {}
    for path in _files():
        graph[_module_name(path)] = sorted({target for _, target in
                                            _imports(path, module_level_only=True)})
    # strongly connected components (Tarjan, with an explicit stack)
    index, low, on_stack, order, cycles = {}, {}, set(), [], []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(graph[root]))]
        index[root] = low[root] = len(index)
        order.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in graph:
                    continue
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    order.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(graph[nxt])))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = order.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1 or node in graph[node]:
                        cycles.append(sorted(component))
    assert cycles == []
