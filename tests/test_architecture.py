"""The engine's import rules: deem_core never imports streamlit or the app (deem_studio, pages), and its
sub-packages import downwards only: data <- model <- analysis <- methods <- plots <- cli."""

from __future__ import annotations

import ast
import json
import subprocess
import sys

from conftest import ROOT

ENGINE = ROOT / "deem_core"
#: a sub-package may import the ones with a smaller rank (``errors`` imports nothing and is open to all)
RANK = {"errors": -1, "data": 0, "model": 1, "analysis": 2, "methods": 3, "plots": 4, "cli": 5}
FORBIDDEN = ("streamlit", "deem_studio", "pages")


def test_importing_every_engine_module_loads_no_app_code():
    script = f"""
import json, pkgutil, importlib, sys
sys.path.insert(0, {str(ROOT)!r})
import deem_core
names = [m.name for m in pkgutil.walk_packages(deem_core.__path__, "deem_core.")]
for name in names:
    importlib.import_module(name)
bad = sorted(m for m in sys.modules if m.split(".")[0] in {FORBIDDEN!r})
print(json.dumps({{"modules": len(names), "bad": bad}}))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["modules"] > 30  # every module was imported (the walk found the sub-packages)
    assert report["bad"] == [], report["bad"]


def _imports(path):
    """Every deem_core module a file imports, lazily inside functions too: (line, module)."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            yield node.lineno, node.module
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name


def test_engine_imports_point_down_only():
    violations = []
    for path in sorted(ENGINE.rglob("*.py")):
        relative = path.relative_to(ENGINE)
        layer = relative.parts[0].removesuffix(".py") if len(relative.parts) > 1 or relative.stem == "errors" else None
        for line, module in _imports(path):
            top = module.split(".")[0]
            if top in FORBIDDEN:
                violations.append(f"{relative}:{line} imports {module}")
            if layer is None or not module.startswith("deem_core."):
                continue
            target = module.split(".")[1]
            if target in RANK and target != layer and RANK[target] > RANK[layer]:
                violations.append(f"{relative}:{line} ({layer}) imports {module} ({target})")
    assert violations == []


def test_the_rule_catches_a_violation(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from deem_core.methods.deem import DEEM\n    import streamlit\n")
    assert list(_imports(bad)) == [(2, "deem_core.methods.deem"), (3, "streamlit")]
