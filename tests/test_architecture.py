"""The shape of the code, held by tests: layers without circles, one declaration per stage that the CLI, the
pipeline schema and the runner agree on, and corpus names that agree with the item schema."""

import ast
import dataclasses
import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from soundmind_data.cli import app
from soundmind_data import declared_commands
from soundmind_data.core import corpus, schemas
from soundmind_data.stages import PIPELINE_STAGES, declaration
from soundmind_data.stages.ingest import IngestOptions
from soundmind_data.stages.validate import ValidateOptions

PACKAGE = Path(__file__).resolve().parent.parent / "soundmind_data"

# Lower layers never import higher ones. Each layer is a set of packages; a module's layer is its package's (the
# first part of its name); the package's own `__init__` is the bottom layer.
LAYERS = {
    "core": 0,  # the corpus contract and plumbing: errors, corpus, jsonl, tempfiles, schemas, stage, ...
    "text": 1,  # how text is spoken and compared
    "report": 2,  # tables and plots, returned as text and images
    "engines": 3, "tts": 3, "llm": 3,  # the corpus rules stages share; voices; language models
    "checks": 4, "hub": 4, "rl": 4, "sources": 4, "review": 4,  # judges, the Hub, training, sources, the review page
    "stages": 5,
    "pipeline": 6, "commands": 6,
    "cli": 7, "declared_commands": 7, "console": 7, "__main__": 7,
    "soundmind_data": 0,
}
ROOT_MODULES_AT_MOST = 8


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(part for part in parts if part != "__init__") or "soundmind_data"


def _layer(module: str) -> int:
    return LAYERS[module.split(".")[0]]  # a KeyError names a package the table does not place


def _imports() -> dict[str, set[str]]:
    """Every soundmind_data module and the soundmind_data modules it imports, at any depth of its code."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        name = _module_name(path)
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level:  # `from . import split`, `from ..console import err`
                package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                package = package[:len(package) - node.level + 1] if node.level > 1 else package
                node = ast.ImportFrom(".".join(["soundmind_data", *package, *([node.module] if node.module else [])]),
                                      node.names, 0)
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("soundmind_data"):
                base = node.module.removeprefix("soundmind_data").lstrip(".")
                for alias in node.names:  # `from soundmind_data.stages import reason` imports a module, and
                    candidate = f"{base}.{alias.name}".lstrip(".")  # `from soundmind_data import stages` a package
                    where = PACKAGE / candidate.replace(".", "/")
                    targets.add(candidate if where.with_suffix(".py").exists() or (where / "__init__.py").exists()
                                else base or "soundmind_data")
            elif isinstance(node, ast.Import):
                targets |= {a.name.removeprefix("soundmind_data.") for a in node.names
                            if a.name.startswith("soundmind_data.")}
        graph[name] = {target for target in targets if target != name}
    return graph


def test_no_module_imports_a_higher_layer():
    upward = [(module, target) for module, targets in _imports().items() for target in targets
              if _layer(target) > _layer(module)]
    assert upward == []


def test_the_import_graph_has_no_circle(graph: dict[str, set[str]] | None = None):
    graph = _imports() if graph is None else graph
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        assert module not in path, " -> ".join(path + [module])
        if module in done:
            return
        for target in graph.get(module, ()):
            visit(target, path + [module])
        done.add(module)

    for module in graph:
        visit(module, [])


def test_the_packages_import_each_other_without_a_circle():
    """The layers are packages: the graph of which package imports which has no circle either."""
    graph: dict[str, set[str]] = {}
    for module, targets in _imports().items():
        graph.setdefault(module.split(".")[0], set()).update(
            target.split(".")[0] for target in targets if target.split(".")[0] != module.split(".")[0])
    test_the_import_graph_has_no_circle(graph)


def test_the_package_root_holds_only_the_entry_points_and_the_layer_packages():
    modules = sorted(path.name for path in PACKAGE.glob("*.py"))
    assert len(modules) <= ROOT_MODULES_AT_MOST, modules
    assert {path.name for path in PACKAGE.iterdir() if path.is_dir() and (path / "__init__.py").exists()} == \
        {name for name in LAYERS if (PACKAGE / name).is_dir()}


def test_no_module_is_over_500_lines():
    long = {str(path.relative_to(PACKAGE)): lines for path in PACKAGE.rglob("*.py")
            if (lines := len(path.read_text(encoding="utf-8").splitlines())) > 500}
    assert long == {}


def test_no_stage_module_imports_another():
    """A stage is thin: what two stages share lives below them, in an engine (a stage imports none of stages/)."""
    between_stages = [(module, target) for module, targets in _imports().items() if module.startswith("stages.")
                      for target in targets if target == "stages" or target.startswith("stages.")]
    assert between_stages == []


def test_only_the_runner_and_the_front_end_reach_a_stage_module():
    """A stage is no library: commands (add) and engines use what stages share from below them, and only the runner
    and the command line reach a stage, through its declaration (`stages.declaration`)."""
    reaching = {module for module, targets in _imports().items()
                if any(target == "stages" or target.startswith("stages.") for target in targets)
                and module != "stages" and not module.startswith("stages.")}
    assert reaching <= {"declared_commands"} | {module for module in _imports() if module.startswith("pipeline")}, reaching


def test_every_module_of_stages_is_a_pipeline_stage():
    """stages/ holds stages only: commands over a corpus (add, diff) live in commands/, engines below stages/."""
    modules = {path.stem for path in (PACKAGE / "stages").glob("*.py") if path.stem != "__init__"}
    assert modules == set(PIPELINE_STAGES)


def test_the_pipeline_schema_lists_exactly_the_declared_stages():
    schema = json.loads((schemas.schema_dir() / "pipeline.schema.json").read_text(encoding="utf-8"))
    assert schema["properties"]["stages"]["items"]["properties"]["stage"]["enum"] == list(PIPELINE_STAGES)
    assert [declaration(name).name for name in PIPELINE_STAGES] == list(PIPELINE_STAGES)


@pytest.mark.parametrize("name", PIPELINE_STAGES)
def test_a_stage_command_has_the_options_of_its_declaration(name):
    """A pipeline's `with:` keys are the command's long options: same names, same defaults. The command's own
    arguments are the input manifest, the output (--out or --local-dir) and the report (--json)."""
    stage = declaration(name)
    group = typer.main.get_command(app)
    click_command = group.get_command(typer.Context(group), name)
    runner_given = {"manifest", stage.output_flag.lstrip("-").replace("-", "_"), "json"}
    command_options = {}
    for param in click_command.params:
        long_name = param.name if not param.opts[0].startswith("-") else \
            max(param.opts, key=len).lstrip("-").replace("-", "_")
        if long_name not in runner_given:
            command_options[long_name] = param.default
    fields = {field.name: field.default for field in dataclasses.fields(stage.options)}
    assert set(command_options) == set(fields)
    for option, default in fields.items():
        if default is dataclasses.MISSING:
            assert command_options[option] is None or command_options[option] == (), option  # required
        else:
            assert command_options[option] == (list(default) if isinstance(default, tuple) else default), option


def test_a_made_command_hands_its_stage_the_options_of_its_command_line(monkeypatch):
    """The command made from a declaration parses long and short flags, repeated arguments (a tuple), the output
    and the report apart from the options, and the bounds an option declares."""
    calls = []
    monkeypatch.setattr(declared_commands, "run_stage", lambda stage, manifest, out, options, report=None, **context:
                        calls.append((stage.name, manifest, out, options, report)))
    runner = CliRunner()
    done = runner.invoke(app, ["validate", "m.jsonl", "--asr", "whisper", "-w", "2", "--out", "o.jsonl", "--json",
                               "r.json", "--strict"])
    assert done.exit_code == 0, done.output
    assert calls.pop() == ("validate", Path("m.jsonl"), Path("o.jsonl"),
                           ValidateOptions(asr="whisper", workers=2, strict=True), Path("r.json"))
    done = runner.invoke(app, ["ingest", "a.jsonl", "b.jsonl", "-f", "soundmind", "-s", "dev", "-o", "i.jsonl"])
    assert done.exit_code == 0, done.output
    assert calls.pop() == ("ingest", None, Path("i.jsonl"),
                           IngestOptions(sources=(Path("a.jsonl"), Path("b.jsonl")), format="soundmind", split="dev"),
                           None)
    assert runner.invoke(app, ["ingest", "a.jsonl", "-f", "soundmind", "-o", "i.jsonl", "--limit", "0"]).exit_code == 2
    assert runner.invoke(app, ["validate", "m.jsonl", "--no-such-option"]).exit_code == 2
    assert calls == []


def _schema_accepts(field: str, value: str) -> bool:
    return not any(list(error.absolute_path)[:1] == [field] for error in schemas.errors("item", {field: value}))


@pytest.mark.parametrize("value", ["a", "item-1.b_c", "x" * 64, "x" * 65, ".", "..", "...", "a/b", "", "a b", "dev-2",
                                   "a\n", "a\n\n", "\na"])  # Python's `$` also matches before a final newline
def test_corpus_patterns_agree_with_the_item_schema(value):
    assert bool(corpus.ID_PATTERN.fullmatch(value)) == _schema_accepts("id", value)
    assert bool(corpus.SPLIT_PATTERN.fullmatch(value)) == _schema_accepts("split", value)


def test_every_audio_field_and_its_text_are_item_fields():
    properties = json.loads((schemas.schema_dir() / "item.schema.json").read_text(encoding="utf-8"))["properties"]
    assert set(corpus.AUDIO_TEXT) | set(corpus.AUDIO_TEXT.values()) <= set(properties)
