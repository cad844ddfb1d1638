"""The shape of the code, held by tests: layers without circles, one declaration per stage that the CLI, the
pipeline schema and the runner agree on, and corpus names that agree with the item schema."""

import ast
import dataclasses
import json
from pathlib import Path

import pytest
import typer

from soundmind_data import corpus, schemas
from soundmind_data.cli import app
from soundmind_data.stages import PIPELINE_STAGES, declaration

PACKAGE = Path(__file__).resolve().parent.parent / "soundmind_data"

# Lower layers never import higher ones. A module's layer is the first entry whose prefix matches its name.
LAYERS = [
    ("cli", 5), ("console", 5), ("__main__", 5),
    ("pipeline", 4), ("commands", 4),
    ("stages", 3),
    ("card", 2), ("hubfolder", 2), ("plots", 2), ("hub", 2), ("checks", 2), ("tts", 2), ("llm", 2), ("rl", 2),
    ("sources", 2), ("review", 2), ("manifest_audit", 2), ("splitting", 2),
    ("stage", 1), ("speech_text", 1), ("speakable", 1), ("procpool", 1), ("template", 1), ("source_records", 1),
    ("answers", 1),
    ("", 0),  # errors, tempfiles, jsonl, schemas, corpus, labels, textkey, table, the package itself
]


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(part for part in parts if part != "__init__") or "soundmind_data"


def _layer(module: str) -> int:
    for prefix, layer in LAYERS:
        if module == prefix or module.startswith(prefix + ".") or prefix == "":
            return layer
    raise AssertionError(module)


def _imports() -> dict[str, set[str]]:
    """Every soundmind_data module and the soundmind_data modules it imports, at any depth of its code."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        name = _module_name(path)
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("soundmind_data"):
                base = node.module.removeprefix("soundmind_data").lstrip(".")
                for alias in node.names:  # `from soundmind_data.stages import reason` imports a module
                    candidate = f"{base}.{alias.name}".lstrip(".")
                    targets.add(candidate if (PACKAGE / candidate.replace(".", "/")).with_suffix(".py").exists()
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


def test_the_import_graph_has_no_circle():
    graph = _imports()
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


def test_no_stage_module_imports_another():
    """A stage is thin: what two stages share lives below them, in an engine (a stage imports none of stages/)."""
    between_stages = [(module, target) for module, targets in _imports().items() if module.startswith("stages.")
                      for target in targets if target == "stages" or target.startswith("stages.")]
    assert between_stages == []


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
    click_command = typer.main.get_command(app).commands[name]
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
