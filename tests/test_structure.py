"""The parts stay apart: the library (gioada/) never imports what serves the app (gioada/app/), and only the
app's UI layer (gioada/app/ui/) imports Gradio."""
import ast
from pathlib import Path

LIBRARY = Path(__file__).resolve().parent.parent / "gioada"


def _imports(path: Path) -> set[str]:
    """Absolute names of the modules ``path`` imports (relative imports resolved against its package)."""
    package = ".".join(path.relative_to(LIBRARY.parent).with_suffix("").parts[:-1])
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(p for p in (base, node.module or "") if p) if node.level else node.module or ""
            names |= {module} | {f"{module}.{a.name}" for a in node.names}
    return names


def test_the_library_never_imports_the_app_part():
    library = [p for p in LIBRARY.rglob("*.py") if "app" not in p.relative_to(LIBRARY).parts[:1]]
    assert len(library) > 20
    offenders = {str(p.relative_to(LIBRARY)): sorted(n for n in _imports(p) if n.startswith("gioada.app"))
                 for p in library}
    assert not {k: v for k, v in offenders.items() if v}
    # The check sees imports: the app part's own modules do import each other and the library.
    assert any(n.startswith("gioada.app.") for n in _imports(LIBRARY / "app" / "explore.py"))
    assert "gioada.checkpoint" in {n.rsplit(".", 1)[0] for n in _imports(LIBRARY / "app" / "registry.py")} | \
        _imports(LIBRARY / "app" / "registry.py")


def test_only_the_ui_layer_imports_gradio():
    """gioada.app is testable without a browser: Gradio stays in gioada/app/ui (and app.py)."""
    outside = [p for p in LIBRARY.rglob("*.py") if "ui" not in p.relative_to(LIBRARY).parts[:2]]
    offenders = [str(p.relative_to(LIBRARY)) for p in outside if any(n.split(".")[0] == "gradio" for n in _imports(p))]
    assert not offenders
    ui = list((LIBRARY / "app" / "ui").glob("*_tab.py"))
    assert len(ui) == 3 and all("gradio" in _imports(p) for p in ui)
