"""Uploading a built dataset folder to the Hugging Face Hub, resumably, with errors a person can act on.

The upload goes through `huggingface_hub`: `create_repo(exist_ok=True)`, then one `create_commit`. Resuming needs no
local state, only the Hub's own protocol:
- files already committed with the same sha256 are left out of the commit (we compare the remote tree first), so
  republishing an unchanged corpus uploads nothing;
- files uploaded before an interruption but never committed are already in the repo's LFS storage, and the LFS batch
  API tells the client not to send them again, so a re-run uploads only what is missing.

The token comes from `HF_TOKEN` or the user's `hf auth login`; it is handed to the client and never printed, logged
or written anywhere by this module.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from soundmind_data.core.corpus import CARD_FILE, DATA_DIR, PLOTS_DIR
from soundmind_data.core.errors import DataError, UsageError
from soundmind_data.core.stage import Progress, SILENT

REPO_TYPE = "dataset"


@dataclass
class PushResult:
    repo_url: str
    commit_url: str | None  # None when nothing changed and no commit was made
    committed: list[str] = field(default_factory=list)  # files added or changed by the commit
    unchanged: list[str] = field(default_factory=list)  # files the repo already had, byte for byte
    deleted: list[str] = field(default_factory=list)  # stale shards and plots of an earlier publish


def resolve_token() -> str:
    """`HF_TOKEN`, else the token saved by `hf auth login`; a usage error when there is neither."""
    from huggingface_hub import get_token

    token = get_token()
    if not token:
        raise UsageError("no Hugging Face token: set HF_TOKEN or run `hf auth login` (a token with write access)")
    return token


def check_repo_id(repo_id: str) -> None:
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:
        raise UsageError(f"--repo-id {repo_id!r}: invalid repo id: {exc}") from None
    if repo_id.count("/") != 1:
        raise UsageError(f"--repo-id {repo_id!r}: expected ORG/NAME or USER/NAME")


def local_files(folder: Path) -> list[str]:
    """The files to publish: README.md, the parquet shards and the card's plots, as repo paths."""
    shards = sorted(p.relative_to(folder).as_posix() for p in (folder / DATA_DIR).glob("*.parquet"))
    plots = sorted(p.relative_to(folder).as_posix() for p in (folder / PLOTS_DIR).glob("*.png"))
    return [CARD_FILE] + shards + plots


def sha256_file(path: Path) -> str:
    """The sha256 of a file, read in blocks (the Hub's own helper: the digest its LFS storage compares)."""
    from huggingface_hub.utils.sha import sha_fileobj

    with open(path, "rb") as handle:
        return sha_fileobj(handle).hex()


def _same_as_remote(path: Path, remote) -> bool:
    """Whether the repo already holds this exact file: LFS files by sha256, small git files by git blob id."""
    if remote is None or remote.size != path.stat().st_size:
        return False
    if remote.lfs is not None:
        return sha256_file(path) == remote.lfs.sha256
    from huggingface_hub.utils.sha import git_hash

    return git_hash(path.read_bytes()) == remote.blob_id


@dataclass
class RemoteRepo:
    """A dataset repo that exists and that we may write to, with the branch to commit to (None: main)."""

    api: Any
    repo_id: str
    revision: str | None
    url: str


def open_repo(repo_id: str, *, token: str, private: bool = False, revision: str | None = None) -> RemoteRepo:
    """Create the dataset repo if needed (and the branch `revision`): cheap, and fails fast on a bad token, a
    missing permission or no network, before any corpus is built."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    with hub_errors(repo_id):
        url = str(api.create_repo(repo_id, repo_type=REPO_TYPE, private=private, exist_ok=True))
        if revision:
            api.create_branch(repo_id, branch=revision, repo_type=REPO_TYPE, exist_ok=True)
    return RemoteRepo(api=api, repo_id=repo_id, revision=revision, url=url)


def push_folder(
    repo: RemoteRepo,
    folder: str | Path,
    *,
    commit_message: str = "Publish with soundmind-data",
    progress: Progress = SILENT,
) -> PushResult:
    """Upload `folder` (README.md + data/*.parquet) to `repo` in one commit; see the module docstring.

    `progress` advances once per local file compared with the remote copy.
    """
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete
    from huggingface_hub.hf_api import RepoFile

    folder = Path(folder)
    result = PushResult(repo_url=repo.url, commit_url=None)
    with hub_errors(repo.repo_id):
        remote = {entry.path: entry for entry in repo.api.list_repo_tree(
            repo.repo_id, repo_type=REPO_TYPE, revision=repo.revision, recursive=True) if isinstance(entry, RepoFile)}
        operations = []
        wanted = local_files(folder)
        for path in wanted:
            if _same_as_remote(folder / path, remote.get(path)):
                result.unchanged.append(path)
            else:
                operations.append(CommitOperationAdd(path_in_repo=path, path_or_fileobj=str(folder / path)))
            progress.advance()
        # Shards of an earlier publish that this one does not have (the shard count is in their names), and its plots.
        result.deleted = sorted(p for p in remote if p not in wanted and (
            (p.startswith(f"{DATA_DIR}/") and p.endswith(".parquet"))
            or (p.startswith(f"{PLOTS_DIR}/") and p.endswith(".png"))))
        operations += [CommitOperationDelete(path_in_repo=path) for path in result.deleted]
        if operations:
            info = repo.api.create_commit(repo.repo_id, operations, commit_message=commit_message,
                                          repo_type=REPO_TYPE, revision=repo.revision)
            result.commit_url = info.commit_url
            result.committed = [op.path_in_repo for op in operations if isinstance(op, CommitOperationAdd)]
    return result


@contextmanager
def hub_errors(repo_id: str) -> Iterator[None]:
    """Turn what `huggingface_hub` really raises into one-line errors: UsageError (fix the command or the
    credentials, exit 2) or DataError (the upload failed: re-run to resume, exit 1). Anything else propagates."""
    try:
        yield
    except (UsageError, DataError):
        raise
    except Exception as exc:
        message, usage = describe_hub_error(exc, repo_id)
        if message is None:
            raise
        raise (UsageError if usage else DataError)(message) from None


def describe_hub_error(exc: BaseException, repo_id: str) -> tuple[str | None, bool]:
    """(message, is a usage error) for a client exception, or (None, False) when it is not a Hub failure.

    The client raises `HfHubHTTPError` for HTTP error statuses, httpx2 transport errors (which are not OSError) when
    the network is down, and wraps a failed LFS upload in a RuntimeError whose cause is one of those.
    """
    import httpx2
    from huggingface_hub.errors import HfHubHTTPError

    resume = "; re-run the same command to resume (only missing files are uploaded)"
    for cause in _causes(exc):
        if isinstance(cause, HfHubHTTPError) and cause.response is not None:
            status = cause.response.status_code
            if status == 401:
                return "the Hugging Face token was rejected (401): check HF_TOKEN or run `hf auth login`", True
            if status == 403:
                return f"no permission to create or write {repo_id} (403): use a token with write access", True
            if status == 404:
                return f"{repo_id}: repository or branch not found (404)", True
            return f"upload to {repo_id} failed: {str(cause).splitlines()[0]}{resume}", False
        if isinstance(cause, httpx2.HTTPError):
            return f"cannot reach the Hub ({type(cause).__name__}: {cause}){resume}", False
    return None, False


def _causes(exc: BaseException) -> Iterable[BaseException]:
    """The exception and its chain of causes, outermost first."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__
