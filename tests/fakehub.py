"""A local stand-in for the part of the Hugging Face Hub HTTP API that `huggingface_hub` uses to publish a dataset
and to download one.

Tests run the real, unmodified client against it (`HF_ENDPOINT=<url>`, `HF_HUB_DISABLE_XET=1`, so uploads take the
git-LFS path): create_repo, repo info, branches, tree listing, README YAML validation, preupload, the LFS batch API,
LFS object PUTs and ndjson commits. Like the Hub, uploaded LFS objects live in the repo's storage whether or not a
commit references them yet, and the batch API asks the client to upload only objects it does not have: that is what
makes an interrupted upload resumable.

Downloads: `resolve/REVISION/PATH` (HEAD and GET, a branch or any commit a branch ever pointed at, as the Hub
keeps them), with the Hub's headers (X-Repo-Commit, the ETag: an LFS file's sha256, else its git blob id) and Range
requests, and the tree listing at a revision. `add_files` puts a repository's files in place without the upload
protocol; `drop_downloads` cuts a file's next GET short, `hold_downloads` keeps it waiting (and `held` set) after its
first bytes until `heal()`, `gone` answers 404 for a file the listing still names (removed upstream meanwhile), and
`on_download(path)` runs as a file's GET is answered, before its body goes (a test moves a branch there).

    with FakeHub(tokens={"hf_secret": ("alice", ["org"])}) as hub:
        ... HF_ENDPOINT=hub.url ...
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable
from urllib.parse import unquote, urlparse

import yaml

LFS_THRESHOLD = 10 * 1024 * 1024  # the Hub stores bigger files (and *.parquet, by .gitattributes) in LFS
LFS_SUFFIXES = (".parquet", ".wav", ".flac")  # stored in LFS whatever their size, as the Hub's .gitattributes says


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class StoredFile:
    size: int
    lfs_oid: str | None  # sha256 of the content for LFS files
    content: bytes | None  # the bytes of a regular (non-LFS) file

    @property
    def oid(self) -> str:
        """What the preupload endpoint reports as the remote oid (sha256 for LFS files, git blob id otherwise)."""
        return self.lfs_oid or git_blob_id(self.content or b"")


@dataclass
class Repo:
    owner: str
    private: bool
    branches: dict[str, dict[str, StoredFile]] = field(default_factory=lambda: {"main": {}})
    heads: dict[str, str] = field(default_factory=lambda: {"main": "0" * 40})
    commits: list[dict] = field(default_factory=list)
    trees: dict[str, dict[str, StoredFile]] = field(default_factory=lambda: {"0" * 40: {}})  # commit -> its files


class FakeHub:
    """Threaded HTTP server on 127.0.0.1 (free port).

    `fail_uploads_after=N` makes every LFS PUT after the N-th fail with HTTP 507, as a storage backend failing
    mid-upload would. `hold_uploads_after=N` instead keeps every PUT after the N-th waiting (and `held` set) until
    `heal()`, so a test can kill the uploading process mid-upload; held uploads are never stored.
    """

    def __init__(self, tokens: dict[str, tuple[str, list[str]]], fail_uploads_after: int | None = None,
                 hold_uploads_after: int | None = None):
        self.tokens = tokens  # token -> (user name, organisations the user may write to)
        self.fail_uploads_after = fail_uploads_after
        self.hold_uploads_after = hold_uploads_after
        self.held = threading.Event()
        self._released = threading.Event()
        self.repos: dict[str, Repo] = {}
        self.lfs_objects: dict[str, bytes] = {}
        self.uploads: list[str] = []  # oids of the LFS PUTs that succeeded, in order
        self.requests: list[tuple[str, str, dict[str, str]]] = []  # (method, path, headers) of every request
        self.drop_downloads: dict[str, int] = {}  # repo path -> bytes its next GET sends before the connection drops
        self.hold_downloads: dict[str, int] = {}  # repo path -> bytes its GETs send before waiting for heal()
        self.gone: set[str] = set()  # repo paths listed but not served
        self.on_download: Callable[[str], None] | None = None  # called with a repo path as its GET is answered
        self.bodies: list[bytes] = []
        self.lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> "FakeHub":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def heal(self) -> None:
        self.fail_uploads_after = self.hold_uploads_after = None
        self.hold_downloads.clear()
        self._released.set()

    def files(self, repo_id: str, branch: str = "main") -> dict[str, bytes]:
        """The committed files of a branch, with their content."""
        tree = self.repos[repo_id].branches[branch]
        return {path: (self.lfs_objects[f.lfs_oid] if f.lfs_oid else f.content) for path, f in tree.items()}

    def add_files(self, repo_id: str, files: dict[str, bytes], branch: str = "main") -> str:
        """Commit `files` ({repo path: content}) to a (public) repo, created if missing, as the Hub stores them (audio
        and parquet in LFS); returns the new head commit."""
        repo = self.repos.setdefault(repo_id, Repo(owner=repo_id.split("/")[0], private=False))
        tree = dict(repo.branches.get(branch, {}))  # a new tree: the one of the commit before stays served
        for path, content in files.items():
            if path.endswith(LFS_SUFFIXES) or len(content) > LFS_THRESHOLD:
                oid = hashlib.sha256(content).hexdigest()
                self.lfs_objects[oid] = content
                tree[path] = StoredFile(len(content), oid, None)
            else:
                tree[path] = StoredFile(len(content), None, content)
        repo.heads[branch] = hashlib.sha1(json.dumps(sorted(files)).encode() + repo.heads.get(branch, "").encode()).hexdigest()
        repo.branches[branch] = repo.trees[repo.heads[branch]] = tree
        return repo.heads[branch]

    def downloads(self, repo_id: str) -> list[str]:
        """The repo paths of the file bodies requested (GET resolve), in order."""
        prefix = f"/datasets/{repo_id}/resolve/"
        return [path[len(prefix):].split("/", 1)[1] for method, path, _ in self.requests
                if method == "GET" and path.startswith(prefix)]


def _handler_for(hub: FakeHub):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # keep pytest output clean
            pass

        # ------------------------------------------------------------------------------------------ plumbing
        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            with hub.lock:
                hub.bodies.append(body)
            return body

        def _send(self, status: int, payload=None, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(payload if payload is not None else {}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            if self.command != "HEAD":  # a HEAD response has no body: one left on the connection spoils the next
                self.wfile.write(data)

        def _error(self, status: int, message: str, code: str | None = None) -> None:
            headers = {"X-Error-Message": message}
            if code:
                headers["X-Error-Code"] = code
            self._send(status, {"error": message}, headers)

        def _user(self) -> tuple[str, list[str]] | None:
            auth = self.headers.get("Authorization", "")
            return hub.tokens.get(auth.removeprefix("Bearer ")) if auth.startswith("Bearer ") else None

        def _may_write(self, namespace: str) -> bool:
            user = self._user()
            return user is not None and (namespace == user[0] or namespace in user[1])

        def _repo(self, repo_id: str, *, write: bool) -> Repo | None:
            """The repo if the caller may see it (and write to it when `write`), else an error is sent."""
            user = self._user()
            repo = hub.repos.get(repo_id)
            visible = repo is not None and (not repo.private or self._may_write(repo.owner))
            if not visible:
                self._error(404 if user else 401, "Repository not found", "RepoNotFound")
                return None
            if write and not self._may_write(repo.owner):
                self._error(403, f"You don't have the rights to write to {repo_id}")
                return None
            return repo

        def _record(self) -> tuple[str, list[str]]:
            path = urlparse(self.path).path
            with hub.lock:
                hub.requests.append((self.command, path, dict(self.headers)))
            return path, [unquote(part) for part in path.strip("/").split("/")]

        def _at(self, repo: Repo, revision: str) -> tuple[str, dict[str, StoredFile]] | None:
            """The commit a revision (a branch, or a commit) names, and its files."""
            if revision in repo.branches:
                return repo.heads[revision], repo.branches[revision]
            return (revision, repo.trees[revision]) if revision in repo.trees else None

        # ---------------------------------------------------------------------------------------------- verbs
        def do_HEAD(self) -> None:
            path, parts = self._record()
            if parts[0] == "datasets" and len(parts) >= 6 and parts[3] == "resolve":
                return self._resolve(f"{parts[1]}/{parts[2]}", parts[4], "/".join(parts[5:]), body=False)
            self._error(404, f"no route HEAD {path}")

        def do_GET(self) -> None:
            path, parts = self._record()
            if parts[0] == "datasets" and len(parts) >= 6 and parts[3] == "resolve":
                return self._resolve(f"{parts[1]}/{parts[2]}", parts[4], "/".join(parts[5:]), body=True)
            if parts[:2] == ["api", "datasets"] and len(parts) >= 4:
                repo_id = f"{parts[2]}/{parts[3]}"
                rest = parts[4:]
                if not rest or rest[0] == "revision":
                    return self._repo_info(repo_id, rest[1] if rest else "main")
                if rest[0] == "tree":
                    return self._tree(repo_id, rest[1], "/".join(rest[2:]))
            self._error(404, f"no route GET {path}")

        def do_POST(self) -> None:
            path, parts = self._record()
            body = self._body()
            if parts == ["api", "repos", "create"]:
                return self._create_repo(json.loads(body))
            if parts == ["api", "validate-yaml"]:
                return self._validate_yaml(json.loads(body))
            if parts[:2] == ["api", "datasets"] and len(parts) >= 6:
                repo_id, action, revision = f"{parts[2]}/{parts[3]}", parts[4], "/".join(parts[5:])
                if action == "preupload":
                    return self._preupload(repo_id, revision, json.loads(body))
                if action == "commit":
                    return self._commit(repo_id, revision, body)
                if action == "branch":
                    return self._branch(repo_id, revision)
            if parts[0] == "datasets" and path.endswith(".git/info/lfs/objects/batch"):
                return self._lfs_batch(f"{parts[1]}/{parts[2].removesuffix('.git')}", json.loads(body))
            self._error(404, f"no route POST {path}")

        def do_PUT(self) -> None:
            path, parts = self._record()
            body = self._body()
            if parts[0] != "lfs-upload":
                return self._error(404, f"no route PUT {path}")
            oid = parts[1]
            with hub.lock:
                failing = hub.fail_uploads_after is not None and len(hub.uploads) >= hub.fail_uploads_after
                holding = hub.hold_uploads_after is not None and len(hub.uploads) >= hub.hold_uploads_after
            if failing:
                return self._error(507, "storage backend unavailable")
            if holding:
                hub.held.set()
                hub._released.wait(timeout=60)
                try:  # the client is usually gone by now
                    return self._error(503, "upload abandoned")
                except OSError:
                    return None
            if hashlib.sha256(body).hexdigest() != oid:
                return self._error(400, "content does not match its oid")
            with hub.lock:
                hub.lfs_objects[oid] = body
                hub.uploads.append(oid)
            self._send(200)

        # --------------------------------------------------------------------------------------- endpoints
        def _create_repo(self, payload: dict) -> None:
            user = self._user()
            if user is None:
                return self._error(401, "Invalid credentials in Authorization header")
            namespace = payload.get("organization") or user[0]
            repo_id = f"{namespace}/{payload['name']}"
            if not self._may_write(namespace):
                return self._error(403, f"You don't have the rights to create a dataset under {namespace}")
            if repo_id in hub.repos:  # the Hub answers 409 with the repo's url, which exist_ok=True relies on
                return self._send(409, {"error": "You already created this dataset repo",
                                         "url": f"{hub.url}/datasets/{repo_id}"})
            hub.repos[repo_id] = Repo(owner=namespace, private=payload.get("visibility") == "private")
            self._send(200, {"url": f"{hub.url}/datasets/{repo_id}", "name": repo_id})

        def _repo_info(self, repo_id: str, revision: str) -> None:
            repo = self._repo(repo_id, write=False)
            if repo is None:
                return
            if (at := self._at(repo, revision)) is None:
                return self._error(404, "Invalid rev id", "RevisionNotFound")
            commit, tree = at
            self._send(200, {"id": repo_id, "sha": commit, "private": repo.private,
                             "siblings": [{"rfilename": p} for p in sorted(tree)]})

        def _resolve(self, repo_id: str, revision: str, path: str, *, body: bool) -> None:
            """A file's content (GET, honouring `Range: bytes=N-`) or its headers alone (HEAD), as the Hub serves
            them (without its redirect of LFS files to a CDN)."""
            repo = self._repo(repo_id, write=False)
            if repo is None:
                return
            at = self._at(repo, revision)
            stored = at[1].get(path) if at else None
            if stored is None or path in hub.gone:
                return self._error(404, "Entry not found", "EntryNotFound")
            content = hub.lfs_objects[stored.lfs_oid] if stored.lfs_oid else stored.content
            wanted = self.headers.get("Range") if body else None
            start = int(wanted.removeprefix("bytes=").split("-")[0]) if wanted else 0
            self.send_response(206 if start else 200)
            self.send_header("X-Repo-Commit", at[0])
            self.send_header("ETag", f'"{stored.oid}"')
            self.send_header("Accept-Ranges", "bytes")
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(content) - 1}/{len(content)}")
            self.send_header("Content-Length", str(len(content) - start))
            self.end_headers()
            if not body:
                return
            with hub.lock:
                cut, hold = hub.drop_downloads.pop(path, None), hub.hold_downloads.get(path)
            if hold is not None:  # announce it all, send part of it, wait (the client is usually killed meanwhile)
                self.wfile.write(content[start:start + hold])
                self.wfile.flush()
                hub.held.set()
                hub._released.wait(timeout=60)
                self.close_connection = True
                return
            if cut is not None:  # announce it all, send part of it, hang up
                self.wfile.write(content[start:start + cut])
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            if hub.on_download:  # before the body: the client cannot go on before it has run
                hub.on_download(path)
            self.wfile.write(content[start:])

        def _tree(self, repo_id: str, revision: str, prefix: str) -> None:
            repo = self._repo(repo_id, write=False)
            if repo is None:
                return
            if (at := self._at(repo, revision)) is None:
                return self._error(404, "Invalid rev id", "RevisionNotFound")
            entries, folders = [], set()
            for path, stored in sorted(at[1].items()):
                if prefix and not path.startswith(prefix.rstrip("/") + "/"):
                    continue
                parent = path.rsplit("/", 1)[0] if "/" in path else ""
                if parent and parent not in folders:
                    folders.add(parent)
                    entries.append({"type": "directory", "oid": "0" * 40, "size": 0, "path": parent})
                entry = {"type": "file", "oid": git_blob_id(stored.content or b""), "size": stored.size, "path": path}
                if stored.lfs_oid:
                    entry["lfs"] = {"oid": stored.lfs_oid, "size": stored.size, "pointerSize": 134}
                entries.append(entry)
            self._send(200, entries)

        def _validate_yaml(self, payload: dict) -> None:
            content = payload["content"]
            try:
                if not content.startswith("---\n"):
                    raise ValueError("no YAML header")
                header = yaml.safe_load(content[4:content.index("\n---", 4)])
                if not isinstance(header, dict):
                    raise ValueError("YAML header is not a mapping")
            except (ValueError, yaml.YAMLError) as exc:
                return self._send(400, {"errors": [{"message": str(exc)}], "warnings": []})
            self._send(200, {"errors": [], "warnings": []})

        def _branch(self, repo_id: str, branch: str) -> None:
            repo = self._repo(repo_id, write=True)
            if repo is None:
                return
            if branch in repo.branches:
                return self._error(409, "Reference already exists")
            repo.branches[branch] = dict(repo.branches["main"])
            repo.heads[branch] = repo.heads["main"]
            self._send(200)

        def _preupload(self, repo_id: str, revision: str, payload: dict) -> None:
            repo = self._repo(repo_id, write=True)
            if repo is None:
                return
            tree = repo.branches.get(revision, {})
            files = []
            for entry in payload["files"]:
                lfs = entry["path"].endswith(".parquet") or entry["size"] > LFS_THRESHOLD
                existing = tree.get(entry["path"])
                files.append({"path": entry["path"], "uploadMode": "lfs" if lfs else "regular",
                              "shouldIgnore": False, "oid": existing.oid if existing else None})
            self._send(200, {"files": files, "commitOid": repo.heads.get(revision, "0" * 40)})

        def _lfs_batch(self, repo_id: str, payload: dict) -> None:
            repo = self._repo(repo_id, write=True)
            if repo is None:
                return
            objects = []
            for obj in payload["objects"]:
                answer = {"oid": obj["oid"], "size": obj["size"]}
                if obj["oid"] not in hub.lfs_objects:  # already stored objects get no actions: nothing to upload
                    answer["actions"] = {"upload": {"href": f"{hub.url}/lfs-upload/{obj['oid']}"}}
                objects.append(answer)
            self._send(200, {"transfer": "basic", "objects": objects})

        def _commit(self, repo_id: str, revision: str, body: bytes) -> None:
            repo = self._repo(repo_id, write=True)
            if repo is None:
                return
            if revision not in repo.branches:
                return self._error(404, "Invalid rev id", "RevisionNotFound")
            tree = dict(repo.branches[revision])
            lines = [json.loads(line) for line in body.splitlines() if line.strip()]
            for line in lines[1:]:
                value = line["value"]
                if line["key"] == "file":
                    content = base64.b64decode(value["content"])
                    tree[value["path"]] = StoredFile(len(content), None, content)
                elif line["key"] == "lfsFile":
                    if value["oid"] not in hub.lfs_objects:
                        return self._error(422, f"LFS object {value['oid']} of {value['path']} was never uploaded")
                    tree[value["path"]] = StoredFile(value["size"], value["oid"], None)
                elif line["key"] == "deletedFile":
                    tree.pop(value["path"], None)
                else:
                    return self._error(400, f"unsupported commit operation {line['key']}")
            head = hashlib.sha1(body + repo.heads[revision].encode()).hexdigest()
            repo.branches[revision], repo.heads[revision] = tree, head
            repo.trees[head] = tree
            repo.commits.append({"branch": revision, "summary": lines[0]["value"]["summary"],
                                 "paths": [line["value"]["path"] for line in lines[1:]]})
            self._send(200, {"commitUrl": f"{hub.url}/datasets/{repo_id}/commit/{head}", "commitOid": head,
                             "success": True})

    return Handler
