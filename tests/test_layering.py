"""The layering: the web side never loads torch, and no app imports an app above it at module level.

Apps, lowest first: jobs, projects < documents < generation < quality < review < exports < demo. The GPU side
(`workers/`) sits above them all: it calls the apps' services, and the apps reach it only inside functions (a task
name, the demo model), never when a module loads.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ORDER = ["jobs", "env", "auth", "projects", "documents", "generation", "quality", "review", "exports", "demo"]
GPU_PACKAGES = {"torch", "transformers", "peft", "accelerate", "triton"}


def _app(path: Path) -> str:
    parts = path.relative_to(ROOT / "workbench").with_suffix("").parts
    return parts[0]


def _module_level_imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of the imports that run when the module loads: not those inside functions or classes' methods."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []

    def visit(nodes):
        for node in nodes:
            if isinstance(node, ast.Import):
                out.extend((node.lineno, alias.name) for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                out.append((node.lineno, node.module))
            elif isinstance(node, (ast.If, ast.Try, ast.With, ast.ClassDef)):
                visit(ast.iter_child_nodes(node))

    visit(tree.body)
    return out


def _web_modules() -> list[Path]:
    return [p for p in (ROOT / "workbench").rglob("*.py") if "migrations" not in p.parts]


def test_no_app_imports_one_above_it_or_the_gpu_side_when_it_loads():
    upward = []
    for path in _web_modules():
        mine = _app(path)
        for line, module in _module_level_imports(path):
            top = module.split(".")[0]
            where = f"{path.relative_to(ROOT)}:{line} imports {module}"
            if top == "workers" or top in GPU_PACKAGES:
                upward.append(where)
            elif top == "workbench" and module.count(".") >= 1 and mine in ORDER:
                other = module.split(".")[1]
                if other in ORDER and ORDER.index(other) > ORDER.index(mine):
                    upward.append(where)
    assert not upward, "\n".join(upward)


def test_the_web_side_and_the_task_modules_load_without_torch():
    """What a web process or a CPU worker imports (the URL conf, every app, the `gpu` tasks' module that Celery
    registers everywhere) does not load torch or transformers: they load in the GPU worker, on first use."""
    code = (
        "import os, sys; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'workbench.settings');"
        "import django; django.setup();"
        "import workbench.urls, workbench.api_urls, workers.tasks, workers.engine;"
        "from workbench.celery import app; app.loader.import_default_modules();"
        "print(sorted(m for m in ('torch', 'transformers', 'peft') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_the_check_sees_an_upward_import(tmp_path):
    """The AST walk finds module-level imports, also under `if` and `try`, and leaves function bodies alone."""
    source = tmp_path / "m.py"
    source.write_text(
        "import os\nfrom workbench.review import services\ntry:\n    import torch\nexcept ImportError:\n    pass\n"
        "def f():\n    from workers import tasks\n",
        encoding="utf-8",
    )
    assert _module_level_imports(source) == [(1, "os"), (2, "workbench.review"), (4, "torch")]
