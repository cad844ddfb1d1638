"""The pre-push check of a built folder: loaded the way users will (`datasets`, streaming), its features compared
with the published ones, each split's shards counted and its first row decoded with torchcodec.
"""

from __future__ import annotations

import gc
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pyarrow.parquet as pq

from soundmind_data.core import tempfiles
from soundmind_data.core.corpus import DATA_DIR
from soundmind_data.hub.folder.build import BuildResult
from soundmind_data.hub.folder.rows import features

DATASETS_CACHE = "datasets-cache"  # the pre-push check's own `datasets` cache, a temp folder inside the folder


@dataclass
class CheckResult:
    ok: bool
    problems: list[str]
    decoded: dict[str, float]  # split -> seconds of question audio decoded from its first row


def check_folder(folder: str | Path, expected: BuildResult) -> CheckResult:
    """Load the folder the way users will (`datasets`, streaming) and decode one row per split with torchcodec.

    Also checks that the features are the published ones and that every split's shards hold the expected rows.
    """
    import datasets

    folder = Path(folder)
    problems: list[str] = []
    decoded: dict[str, float] = {}
    for split, stats in expected.splits.items():
        rows = sum(pq.ParquetFile(folder / DATA_DIR / name).metadata.num_rows for name in stats.shards)
        if rows != stats.rows:
            problems.append(f"split {split}: shards hold {rows} rows, expected {stats.rows}")
    with own_datasets_cache(folder) as cache:
        try:
            # resolved: `datasets` names the dataset after the folder, and "." has no name (publish --local-dir .)
            loaded = datasets.load_dataset(str(folder.resolve()), streaming=True, cache_dir=str(cache))
        except Exception as exc:  # noqa: BLE001 - any failure to load is exactly what this check reports
            return CheckResult(False, problems + [f"datasets.load_dataset failed: {type(exc).__name__}: {exc}"],
                               decoded)
        _check_loaded(loaded, expected, problems, decoded)
        del loaded
        gc.collect()  # the decoders and readers the check made go now, while the interpreter is whole
    return CheckResult(not problems, problems, decoded)


@contextmanager
def own_datasets_cache(folder: Path) -> Iterator[Path]:
    """A `datasets` cache of the check's own, inside the folder checked and removed after it: even a streaming load
    leaves a lock file named after the folder in the cache, and the user's would collect one per publish, named
    after staging folders long deleted. One left by a check that was killed is removed by the next."""
    tempfiles.sweep(folder, DATASETS_CACHE)
    cache = tempfiles.make_temp_dir(folder, DATASETS_CACHE)
    try:
        yield cache
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def _check_loaded(loaded, expected: BuildResult, problems: list[str], decoded: dict[str, float]) -> None:
    """The checks on what `datasets` loaded: splits, features, and each split's first row decoding to its length."""
    if sorted(loaded) != sorted(expected.splits):
        problems.append(f"datasets sees splits {sorted(loaded)}, expected {sorted(expected.splits)}")
    want = features()
    for split in expected.splits:
        if split not in loaded:
            continue
        got = loaded[split].features
        if got is None or got != want:
            problems.append(f"split {split}: features differ from the published schema")
            continue
        rows = iter(loaded[split])
        try:
            row = next(rows)
            samples = row["question_audio"].get_all_samples()
        except Exception as exc:  # noqa: BLE001 - a decoding failure of any kind fails the check
            problems.append(f"split {split}: first row does not decode: {type(exc).__name__}: {exc}")
            continue
        finally:
            # The stream is left after its first row: closed now, its readers (and their native threads) end here,
            # not in the interpreter's teardown, where a reader still running aborts the process ("terminate
            # called without an active exception") after the work is done.
            rows.close()
        seconds = samples.data.shape[-1] / samples.sample_rate
        decoded[split] = seconds
        if samples.data.numel() == 0 or abs(seconds - row["question_duration_s"]) > 0.05:
            problems.append(f"split {split}: row {row['id']} decodes to {seconds:.3f} s of audio, "
                            f"manifest says {row['question_duration_s']:.3f} s")
