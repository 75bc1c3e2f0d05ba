"""The package's shape: ``gradtool.<name>`` is the subpackage or module of that name."""

import subprocess
import sys

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
