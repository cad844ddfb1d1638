"""The example command lines of every command's `--help` and of the README's shell blocks: each one parses, and each
one that runs offline and in seconds runs, in a folder laid out as the examples assume (`demo-out` made by the demo
pipeline itself, cheapened: six short items, the espeak voice, no ASR, no publish; `corpus`, `synth` and `my-corpus`
copies of it; `items.jsonl`, `dev.txt`...), and leaves the files it names. The others are listed with the reason they
do not run here. An example in neither list fails, until it is run here or listed."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import re
import shlex
import shutil
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from factories import logiqa_line, soundmind_line, write_jsonl
from soundmind_data.cli import app
from soundmind_data.core.errors import DataError, UsageError

ROOT = Path(__file__).resolve().parent.parent
COMMAND = "soundmind-data"
# `Example: ...` and `Offline on CPU: ...` lines of a command's help: a label, then a command line
HELP_EXAMPLE = re.compile(rf"^\s*[A-Z][\w ]*:\s+(.*\b{COMMAND}\b.*)$")

# What each example that runs here exits with (1: the fixture's data makes its checks fail, as designed).
RUN = {
    "soundmind-data add examples/add/new-items.jsonl --to my-corpus/manifest.jsonl --json add.json": 0,
    "soundmind-data diff before.jsonl my-corpus/manifest.jsonl": 0,
    "soundmind-data sources list": 0,
    "soundmind-data ingest dev.txt --format logiqa2-nli --split dev --out items.jsonl": 0,
    "soundmind-data ingest soundmind_dev.jsonl --format soundmind --split dev --out items.jsonl": 0,
    "soundmind-data ingest dataset/dev/*/annotation.json --format soundmind --split dev --out items.jsonl": 0,
    "soundmind-data ingest dataset --format soundmind-hub --out corpus/items.jsonl": 0,
    "soundmind-data ingest dataset/dev/metadata.jsonl --format soundmind-hub --out corpus/dev.jsonl": 0,
    "soundmind-data validate items.jsonl --json validate.json": 0,
    "soundmind-data speech-text": 0,
    "soundmind-data audit items.jsonl --gold dev.txt --gold test.txt --json audit.json": 0,
    "soundmind-data audit items.jsonl --gold dev.txt --json audit.json": 0,
    "soundmind-data curate items.jsonl --gold dev.txt --gold test.txt --out curated.jsonl --json curate.json": 0,
    "soundmind-data curate items.jsonl --gold dev.txt --out curated.jsonl --json curate.json": 0,
    "soundmind-data curate validated.jsonl --out release.jsonl --policy pipelines/policies/no-llm.yaml": 0,
    "soundmind-data split items.jsonl --ratios train=0.8,dev=0.1,test=0.1 --seed 0 --out split.jsonl "
    "--json split.json": 0,
    "soundmind-data split items.jsonl --ratios train=0.8,dev=0.1,test=0.1 --seed 0 --out split.jsonl": 0,
    "soundmind-data split grown.jsonl --ratios train=0.8,dev=0.1,test=0.1 --keep-existing --out split.jsonl": 0,
    "soundmind-data balance split.jsonl --strategy downsample --target 1:1 --seed 0 --out balanced.jsonl "
    "--json balance.json": 0,
    "soundmind-data balance split.jsonl --strategy downsample --target 1:1 --seed 0 --out balanced.jsonl": 0,
    "soundmind-data voices": 0,
    "soundmind-data publish synth/manifest.jsonl --local-dir hub-folder": 0,
    "soundmind-data export synth/manifest.jsonl --format soundmind-hub --out dataset": 0,
    "soundmind-data export synth/manifest.jsonl --format soundmind-hub --out dataset/": 0,
    "soundmind-data export synth/manifest.jsonl --format soundmind-hub --audio-format flac --out dataset-flac/": 0,
    "soundmind-data export synth/manifest.jsonl --format verl --modality audio --out verl-data/": 0,
    "soundmind-data export synth/manifest.jsonl --format verl --modality audio --out verl-data": 0,
    "soundmind-data export demo-out/manifest.jsonl --format verl --modality both --out verl-data": 0,
    "soundmind-data export corpus/manifest.jsonl --format verl --modality both --out verl-data": 0,
    "soundmind-data export corpus/manifest.jsonl --format verl --modality text --out verl-data": 0,
    "soundmind-data add my-items.jsonl --to corpus/manifest.jsonl --json add.json": 0,
    "soundmind-data diff corpus-before.jsonl corpus/manifest.jsonl": 0,
    "soundmind-data diff corpus-v1.jsonl corpus-v2.jsonl --json diff.json": 0,
    "soundmind-data review demo-out --out demo-review --embed": 0,
    "soundmind-data review demo-out/09-curate-audio.jsonl --decisions demo-out/09-curate-audio.decisions.jsonl "
    "--validated demo-out/08-rerender.jsonl --out review": 0,
}

SLOW = "minutes of CPU here"
# Examples that are only parsed here, and why.
NOT_RUN = {
    "soundmind-data sources fetch logiqa2-nli --out data/logiqa2-nli":
        "network: downloads from GitHub (tests/test_sources.py fetches from a local server)",
    "soundmind-data sources fetch soundmind --out data/soundmind": "network: downloads from the Hub",
    "soundmind-data sources fetch soundmind --with-audio --out data/soundmind": "network: downloads from the Hub",
    "soundmind-data run pipelines/soundmind.yaml --workdir trial --limit 20 --skip reason --skip curate-audio --set "
    "synthesize.device=cpu --set synthesize.engine=local --set synthesize.workers=2 --set publish.dry_run=true --set "
    "publish.allow_flagged=true": "needs the LogiQA 2.0 files (network), and every voice speaking 60 items: " + SLOW,
    "soundmind-data run pipelines/soundmind.yaml --workdir /data/soundmind-build":
        "GPUs, an LLM server, a Ray cluster and a Hub upload",
    "soundmind-data run pipelines/demo.yaml --workdir demo-out": "the demo itself: tests/test_demo_pipeline.py",
    "soundmind-data run pipelines/repair-release.yaml --workdir repair":
        "the release and the gold files (network) and an LLM server: tests/test_repair_release.py runs it on a "
        "release of its own",
    "soundmind-data run pipelines/demo.yaml --workdir demo-out --from validate": "the demo's judge: " + SLOW,
    "soundmind-data run pipelines/demo.yaml --workdir demo-out --only publish":
        "the build of `publish synth/manifest.jsonl --local-dir hub-folder` again, which runs",
    "soundmind-data validate my-corpus/manifest.jsonl --asr whisper": "Whisper on every file: " + SLOW,
    "soundmind-data validate corpus/manifest.jsonl --asr whisper --workers 2 --out corpus/manifest.checked.jsonl "
    "--json validate.json --plots plots/": "Whisper on every file: " + SLOW,
    "soundmind-data validate corpus/manifest.jsonl --asr whisper --workers 2 --json validate.json --plots plots":
        "Whisper on every file: " + SLOW,
    "soundmind-data publish demo-out/manifest.jsonl --repo-id your-org/soundmind-demo --dry-run":
        "the build of `publish synth/manifest.jsonl --local-dir hub-folder` again, which runs",
    "soundmind-data publish synth/manifest.jsonl --repo-id my-org/soundmind-en --dry-run":
        "the build of `publish synth/manifest.jsonl --local-dir hub-folder` again, which runs",
    "soundmind-data publish demo-out/manifest.jsonl --repo-id your-org/soundmind-demo --private": "a Hub upload",
    "soundmind-data publish synth/manifest.jsonl --repo-id my-org/soundmind-en --private": "a Hub upload",
    "soundmind-data publish synth/manifest.jsonl --repo-id my-org/soundmind-en --local-dir hub-folder": "a Hub upload",
    "soundmind-data reason items.jsonl --out reasoned.jsonl --backend openai --endpoint http://127.0.0.1:8000/v1 "
    "--model Qwen/Qwen3-8B --samples 4 --concurrency 32 --json reason.json": "an LLM server",
    "soundmind-data reason items.jsonl --out reasoned.jsonl --backend openai --endpoint http://127.0.0.1:8000/v1 "
    "--model Qwen/Qwen3-8B --samples 4 --concurrency 32": "an LLM server",
    "soundmind-data reason items.jsonl --out reasoned.jsonl --backend transformers --model ./my-small-model "
    "--samples 2": "a model folder of your own",
    "soundmind-data reason items.jsonl --out reasoned.jsonl --backend transformers --model smollm2-135m --samples 2":
        "a 135M model writing answers on the CPU: tests/test_smollm2.py",
    "soundmind-data reason items.jsonl --out reasoned.jsonl --backend transformers --model smollm2-135m --samples 4":
        "a 135M model writing answers on the CPU: tests/test_smollm2.py",
    "soundmind-data reason items.jsonl --out reasoned.jsonl --backend transformers --model smollm2-135m":
        "a 135M model writing answers on the CPU: tests/test_smollm2.py",
    "soundmind-data synthesize items.jsonl --out corpus --workers 2 --voices all --test-voices kokoro:jm_kumo":
        "every voice of the default pool loaded in two workers (tests/test_voices.py speaks each)",
    "soundmind-data synthesize items.jsonl --out corpus --voices all --device cuda --engine ray --workers 8":
        "a GPU cluster",
    "soundmind-data rerender corpus/manifest.checked.jsonl --out corpus/rerendered.jsonl --attempts 2 "
    "--json rerender.json": "Whisper judging each new rendering: tests/test_rerender.py",
    "soundmind-data rerender corpus/validated.jsonl --out corpus/rerendered.jsonl --attempts 2":
        "Whisper judging each new rendering: tests/test_rerender.py",
    "soundmind-data train --config pipelines/train-tiny.yaml --data demo-out/manifest.jsonl --out demo-out/train":
        "GRPO training: tests/test_rl_grpo.py",
    "soundmind-data train --config pipelines/train-tiny.yaml --out demo-out/train --steps 30 --resume":
        "GRPO training: tests/test_rl_grpo.py",
    "soundmind-data train --config pipelines/train-smollm2.yaml --data demo-out/manifest.jsonl":
        "GRPO on a 135M model: bench/grpo_real.py",
    "soundmind-data train --config pipelines/train-omni.yaml --data corpus/manifest.jsonl --out runs/omni --model "
    "Qwen/Qwen2.5-Omni-7B --device cuda --mode audio": "a GPU and Qwen2.5-Omni-7B from the Hub",
    "soundmind-data train --config pipelines/train-omni.yaml --data demo-out/manifest.jsonl --out demo-out/train-omni "
    "--model tiny-omni --device cpu --steps 4": "GRPO training: tests/test_rl_omni.py",
}

# Options naming a file or folder the command writes, which must exist after it ran.
OUTPUT_OPTIONS = ("--out", "-o", "--json", "--local-dir", "--plots")


def _shell_lines(block: str) -> list[str]:
    """The command lines of a shell block: continuation lines joined, comments and blank lines left out."""
    lines, current = [], ""
    for line in block.splitlines():
        current += line
        if current.endswith("\\"):
            current = current[:-1] + " "
            continue
        if current.strip() and not current.lstrip().startswith("#"):
            lines.append(current.strip())
        current = ""
    return lines


def _example(line: str) -> tuple[str, list[str], str | None] | None:
    """(the example as written here: `soundmind-data ARGS`, ARGS, stdin) of a command line that runs soundmind-data
    (`echo TEXT | soundmind-data ...` gives TEXT as stdin); None for other commands (make, cp, export, pip...)."""
    stdin = None
    if "|" in shlex.split(line, comments=True):
        before, _, line = line.partition("|")
        echo = shlex.split(before)
        assert echo[0] == "echo", before
        stdin = " ".join(echo[1:]) + "\n"
    words = shlex.split(line, comments=True)
    if not words or words[0] != COMMAND:
        return None
    return " ".join(words), words[1:], stdin


def readme_examples() -> list[tuple[str, list[str], str | None]]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```bash\n(.*?)^```", readme, re.MULTILINE | re.DOTALL)
    return [found for block in blocks for line in _shell_lines(block) if (found := _example(line))]


def _commands(command):
    """Every leaf command (`sources fetch` included)."""
    if hasattr(command, "list_commands"):  # through the group's API: the stages' commands are made on demand
        context = typer.Context(command)
        for name in command.list_commands(context):
            yield from _commands(command.get_command(context, name))
    else:
        yield command


def help_examples() -> list[tuple[str, list[str], str | None]]:
    return [found for command in _commands(typer.main.get_command(app)) for line in (command.help or "").splitlines()
            if (match := HELP_EXAMPLE.match(line)) and (found := _example(match.group(1)))]


EXAMPLES = {text: (args, stdin) for text, args, stdin in readme_examples() + help_examples()}


def test_examples_are_found_in_both_places():
    assert {text for text, _, _ in readme_examples()} & {text for text, _, _ in help_examples()}
    assert "soundmind-data speech-text" in EXAMPLES and "soundmind-data voices" in EXAMPLES


def test_every_example_runs_here_or_is_listed_with_a_reason():
    unlisted = [text for text in EXAMPLES if text not in RUN and text not in NOT_RUN]
    assert unlisted == [], "new examples: add each to RUN (it runs here) or NOT_RUN (with the reason it cannot)"
    stale = [text for text in [*RUN, *NOT_RUN] if text not in EXAMPLES]
    assert stale == [], "listed examples that neither --help nor the README shows any more"
    assert not set(RUN) & set(NOT_RUN)


def _leaf(args: list[str]):
    """The click command an argument list calls, and the arguments it gets."""
    command, words = typer.main.get_command(app), list(args)
    while hasattr(command, "list_commands"):
        command = command.get_command(typer.Context(command), words.pop(0))
    return command, words


def _id(text: str) -> str:
    return text.removeprefix(COMMAND + " ")


@pytest.mark.parametrize("text", sorted(EXAMPLES), ids=_id)
def test_every_example_parses(text):
    """Every option exists and every value has its type: the README and --help name no option a command lacks."""
    command, words = _leaf(EXAMPLES[text][0])
    with command.make_context(command.name, words, resilient_parsing=False):
        pass


def _written(args: list[str]) -> list[str]:
    return [args[index + 1] for index, word in enumerate(args[:-1]) if word in OUTPUT_OPTIONS]


@pytest.fixture(scope="module")
def layout(tmp_path_factory) -> Path:
    """A folder as the examples assume it: what each reads, made once (each example runs in a copy of it)."""
    from soundmind_data.pipeline import load_pipeline, run_pipeline, with_overrides

    folder = tmp_path_factory.mktemp("examples")
    for name in ("pipelines", "examples"):
        (folder / name).symlink_to(ROOT / name)
    triplets = [(f"All cats in house {n} are black", f"Tom is a cat in house {n}", f"Tom is black ({n})", n % 2)
                for n in range(6)]
    write_jsonl(folder / "dev.txt", [logiqa_line(major, minor, conclusion + ".", ["not entailed", "entailed"][label])
                                     for major, minor, conclusion, label in triplets[:3]])
    write_jsonl(folder / "test.txt", [logiqa_line(major, minor, conclusion + ".", ["not entailed", "entailed"][label])
                                      for major, minor, conclusion, label in triplets[3:]])
    write_jsonl(folder / "soundmind_dev.jsonl", [soundmind_line(f"{n:04d}", major, minor, conclusion, label)
                                                 for n, (major, minor, conclusion, label) in enumerate(triplets)])
    gold = f"[{folder / 'dev.txt'}, {folder / 'test.txt'}]"
    demo = with_overrides(load_pipeline(ROOT / "pipelines" / "demo.yaml"), skip=["soundmind-demo"], sets=[
        f"ingest.sources=[{folder / 'soundmind_dev.jsonl'}]", f"audit.gold={gold}", f"curate.gold={gold}",
        "split.ratios=train=0.34,dev=0.33,test=0.33", "synthesize.voices=[espeak:en-us]", "synthesize.test_voices=[]",
        "synthesize.workers=1", "validate.asr=null", "validate.workers=1", "rerender.attempts=0"])
    with contextlib.chdir(folder):
        summary = run_pipeline(demo, folder / "demo-out")
    assert summary.exit_code == 0, summary.stages
    demo_out = folder / "demo-out"
    for copy in ("corpus", "synth", "my-corpus"):
        shutil.copytree(demo_out, folder / copy)
    for name in ("before.jsonl", "corpus-before.jsonl", "corpus-v2.jsonl"):
        shutil.copy(demo_out / "manifest.jsonl", folder / name)
    lines = (demo_out / "manifest.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    (folder / "corpus-v1.jsonl").write_text("".join(lines[1:]), encoding="utf-8")
    shutil.copy(demo_out / "01-ingest.jsonl", folder / "items.jsonl")
    shutil.copy(demo_out / "04-split.jsonl", folder / "split.jsonl")
    newcomer = {**json.loads(lines[0]), "id": "newcomer", "split": "pool", "conclusion": "Tom is a newcomer"}
    (folder / "grown.jsonl").write_text((demo_out / "04-split.jsonl").read_text() + json.dumps(newcomer) + "\n")
    shutil.copy(demo_out / "07-validate.jsonl", folder / "validated.jsonl")
    for name in ("manifest.checked.jsonl", "validated.jsonl"):
        shutil.copy(folder / "corpus" / "07-validate.jsonl", folder / "corpus" / name)
    shutil.copy(ROOT / "examples" / "add" / "new-items.jsonl", folder / "my-items.jsonl")
    with contextlib.chdir(folder):  # the release layout that `ingest --format soundmind-hub` reads
        exported = CliRunner().invoke(app, ["export", "synth/manifest.jsonl", "--format", "soundmind-hub", "--out",
                                            "dataset"])
    assert exported.exit_code == 0, exported.output
    return folder


def _exit_code(result) -> int:
    """The exit code `soundmind-data` gives (console.run_app): 2 for a UsageError, 1 for a DataError."""
    if isinstance(result.exception, UsageError):
        return 2
    if isinstance(result.exception, DataError):
        return 1
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code


@pytest.mark.parametrize("text", [text for text in RUN if text in EXAMPLES], ids=_id)
def test_an_example_runs_and_writes_what_it_names(text, layout, tmp_path):
    folder = tmp_path / "here"
    shutil.copytree(layout, folder, symlinks=True)
    args, stdin = EXAMPLES[text]
    for path in _written(args):  # what the example writes is not there before it runs (the layout may have it)
        target = folder / path
        shutil.rmtree(target) if target.is_dir() else target.unlink(missing_ok=True)
    with contextlib.chdir(folder):
        args = [match for word in args for match in (sorted(glob.glob(word)) or [word] if "*" in word else [word])]
        result = CliRunner().invoke(app, args, input=stdin)
    assert _exit_code(result) == RUN[text], (result.output, result.exception)
    missing = [path for path in _written(args) if not os.path.exists(folder / path)]
    assert missing == []
