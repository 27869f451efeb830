"""A loopback Hugging Face Hub: the HTTP endpoints huggingface_hub 2.x and datasets 5.x call to push a dataset
folder (LFS protocol, no Xet) and to load it back, answering with the Hub's real status codes, headers and bodies.

State is kept in memory: repos with branches pointing at commits (snapshots of path -> bytes), LFS objects by
sha256. `requests` records (method, path) of everything that arrived; `lfs_puts` the oids whose upload succeeded.
`fail_lfs_put(n)` makes the n-th LFS upload from now answer 403 (as S3 does for an expired signed URL), once.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

GITATTRIBUTES = b"*.parquet filter=lfs diff=lfs merge=lfs -text\n*.zip filter=lfs diff=lfs merge=lfs -text\n"
REGULAR_MAX_SIZE = 10 * 1024 * 1024


def git_blob_oid(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass
class Repo:
    private: bool
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)  # commit oid -> snapshot
    branches: dict[str, str] = field(default_factory=dict)  # branch name -> commit oid
    lfs_paths: set[str] = field(default_factory=set)
    pulls: int = 0


# The token tests give the loopback Hub; asserted never to appear in what the commands print.
TOKEN = "hf_loopbackSECRETtoken0123456789"


class HubServer:
    def __init__(self, token: str):
        self.token = token
        self.repos: dict[str, Repo] = {}
        self.lfs_objects: dict[str, bytes] = {}
        self.requests: list[tuple[str, str]] = []
        self.lfs_puts: list[str] = []
        self.ranges: list[tuple[str, str]] = []  # (path, Range header) of ranged downloads
        self._lfs_put_failures: set[int] = set()
        self._lfs_put_attempts = 0
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def fail_lfs_put(self, nth: int) -> None:
        self._lfs_put_failures.add(self._lfs_put_attempts + nth)

    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        """The files of a branch, LFS files resolved to their content."""
        repo = self.repos[repo_id]
        return {path: self._content(repo, path, data) for path, data in repo.commits[repo.branches[revision]].items()}

    def put_file(self, repo_id: str, path: str, content: bytes) -> None:
        """Commit a regular file directly, as another client would (e.g. an old loading script)."""
        repo = self.repos[repo_id]
        self._commit(repo, "main", {**repo.commits[repo.branches["main"]], path: content})

    # --- state changes -------------------------------------------------------------------------------------------

    def _create(self, repo_id: str, private: bool) -> bool:
        with self._lock:
            if repo_id in self.repos:
                return False
            repo = self.repos[repo_id] = Repo(private=private)
            self._commit(repo, "main", {".gitattributes": GITATTRIBUTES})
            return True

    def _commit(self, repo: Repo, branch: str, snapshot: dict[str, bytes]) -> str:
        parent = repo.branches.get(branch, "")
        oid = hashlib.sha1((parent + json.dumps(sorted(snapshot)) + str(len(repo.commits))).encode()).hexdigest()
        repo.commits[oid] = snapshot
        repo.branches[branch] = oid
        return oid

    def _content(self, repo: Repo, path: str, data: bytes) -> bytes:
        return self.lfs_objects[data.decode()] if path in repo.lfs_paths else data

    def _entry(self, repo: Repo, path: str, data: bytes) -> dict:
        if path in repo.lfs_paths:
            size = len(self.lfs_objects[data.decode()])
            pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{data.decode()}\nsize {size}\n"
            lfs = {"oid": data.decode(), "size": size, "pointerSize": len(pointer)}
            return {"type": "file", "oid": git_blob_oid(pointer.encode()), "size": size, "path": path, "lfs": lfs}
        return {"type": "file", "oid": git_blob_oid(data), "size": len(data), "path": path}


def _handler(hub: HubServer):
    repo_pattern = r"(?P<repo>[^/]+/[^/]+)"
    routes = [
        ("POST", r"/api/repos/create", "create"),
        ("POST", r"/api/validate-yaml", "validate_yaml"),
        ("GET", rf"/api/datasets/{repo_pattern}(?:/revision/(?P<rev>[^/]+))?", "info"),
        ("POST", rf"/api/datasets/{repo_pattern}/branch/(?P<rev>[^/]+)", "branch"),
        ("POST", rf"/api/datasets/{repo_pattern}/preupload/(?P<rev>[^/]+)", "preupload"),
        ("POST", rf"/api/datasets/{repo_pattern}/commit/(?P<rev>[^/]+)", "commit"),
        ("GET", rf"/api/datasets/{repo_pattern}/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?", "tree"),
        ("POST", rf"/api/datasets/{repo_pattern}/paths-info/(?P<rev>[^/]+)", "paths_info"),
        ("POST", rf"/datasets/{repo_pattern}\.git/info/lfs/objects/batch", "lfs_batch"),
        ("PUT", r"/lfs-upload/(?P<oid>[0-9a-f]{64})", "lfs_put"),
        ("GET", rf"/datasets/{repo_pattern}/resolve/(?P<rev>[^/]+)/(?P<path>.+)", "resolve"),
        ("HEAD", rf"/datasets/{repo_pattern}/resolve/(?P<rev>[^/]+)/(?P<path>.+)", "resolve"),
    ]

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):
            self._dispatch()

        def do_HEAD(self):
            self._dispatch()

        def do_POST(self):
            self._dispatch()

        def do_PUT(self):
            self._dispatch()

        # --- plumbing ---------------------------------------------------------------------------------------------

        def _dispatch(self):
            url = urlsplit(self.path)
            self.query = parse_qs(url.query)
            length = int(self.headers.get("Content-Length") or 0)
            self.body = self.rfile.read(length) if length else b""
            hub.requests.append((self.command, url.path))
            for method, pattern, name in routes:
                match = re.fullmatch(pattern, url.path)
                if method == self.command and match:
                    params = {key: unquote(value) for key, value in match.groupdict().items() if value is not None}
                    return getattr(self, name)(**params)
            self._error(404, "NotFound", f"no route for {self.command} {url.path}")

        def _send(self, status: int, body: bytes = b"", headers: dict | None = None, content_type="application/json"):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            for key, value in (headers or {}).items():
                self.send_header(key, str(value))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _json(self, payload, status: int = 200, headers: dict | None = None):
            self._send(status, json.dumps(payload).encode(), headers)

        def _error(self, status: int, code: str, message: str):
            headers = {"X-Error-Code": code, "X-Error-Message": message} if code else {"X-Error-Message": message}
            self._json({"error": message}, status, headers)

        def _authorized(self) -> bool:
            if self.headers.get("Authorization") == f"Bearer {hub.token}":
                return True
            self._error(401, "", "Invalid credentials in Authorization header")
            return False

        def _repo(self, repo: str, write: bool = False) -> Repo | None:
            found = hub.repos.get(repo)
            if found is None or (
                (write or found.private) and self.headers.get("Authorization") != f"Bearer {hub.token}"
            ):
                self._error(404, "RepoNotFound", "Repository not found")
                return None
            return found

        def _snapshot(self, repo: Repo, rev: str) -> tuple[str, dict[str, bytes]] | None:
            oid = repo.branches.get(rev) or (rev if rev in repo.commits else None)
            if oid is None:
                self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
                return None
            return oid, repo.commits[oid]

        # --- repository API ---------------------------------------------------------------------------------------

        def create(self):
            if not self._authorized():
                return
            payload = json.loads(self.body)
            repo_id = f"{payload['organization']}/{payload['name']}" if payload.get("organization") else payload["name"]
            private = payload.get("visibility") == "private" or bool(payload.get("private"))
            url = f"{hub.url}/datasets/{repo_id}"
            if hub._create(repo_id, private):
                self._json({"url": url, "name": repo_id, "id": repo_id})
            else:
                self._json({"error": "You already created this dataset repo", "url": url}, 409)

        def validate_yaml(self):
            self._json({"errors": [], "warnings": []})

        def info(self, repo: str, rev: str = "main"):
            found = self._repo(repo)
            resolved = found and self._snapshot(found, rev)
            if resolved:
                oid, snapshot = resolved
                siblings = [{"rfilename": path} for path in sorted(snapshot)]
                self._json({"id": repo, "sha": oid, "private": found.private, "siblings": siblings, "tags": []})

        def branch(self, repo: str, rev: str):
            found = self._repo(repo, write=True)
            if found and rev not in found.branches:
                found.branches[rev] = found.branches["main"]
                self._json({})
            elif found:
                self._error(409, "", f"Branch {rev} already exists")

        def preupload(self, repo: str, rev: str):
            found = self._repo(repo, write=True)
            resolved = found and (self._snapshot(found, rev) if "create_pr" not in self.query else ("", {}))
            if not resolved:
                return
            snapshot = found.commits[found.branches["main"]] if "create_pr" in self.query else resolved[1]
            files = []
            for item in json.loads(self.body)["files"]:
                path, sample = item["path"], base64.b64decode(item["sample"])
                lfs = path.endswith((".parquet", ".zip")) or item["size"] > REGULAR_MAX_SIZE or b"\0" in sample
                answer = {"path": path, "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False}
                if path in snapshot:
                    entry = hub._entry(found, path, snapshot[path])
                    answer["oid"] = entry["lfs"]["oid"] if "lfs" in entry else entry["oid"]
                files.append(answer)
            self._json({"files": files, "commitOid": resolved[0]})

        def commit(self, repo: str, rev: str):
            found = self._repo(repo, write=True)
            if not found:
                return
            lines = [json.loads(line) for line in self.body.splitlines() if line.strip()]
            header = lines[0]["value"]
            branch = rev
            if "create_pr" in self.query:
                found.pulls += 1
                branch = f"refs/pr/{found.pulls}"
                found.branches[branch] = found.branches[rev]
            if branch not in found.branches:
                return self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
            if header.get("parentCommit") and header["parentCommit"] != found.branches[branch]:
                return self._error(412, "", "A commit has happened since. Please refresh and try again.")
            snapshot = dict(found.commits[found.branches[branch]])
            for line in lines[1:]:
                key, value = line["key"], line["value"]
                if key == "file":
                    snapshot[value["path"]] = base64.b64decode(value["content"])
                    found.lfs_paths.discard(value["path"])
                elif key == "lfsFile":
                    if value["oid"] not in hub.lfs_objects:
                        return self._error(422, "", f"LFS object {value['oid']} was never uploaded")
                    snapshot[value["path"]] = value["oid"].encode()
                    found.lfs_paths.add(value["path"])
                elif key == "deletedFile":
                    snapshot.pop(value["path"], None)
                elif key == "deletedFolder":
                    snapshot = {p: d for p, d in snapshot.items() if not p.startswith(value["path"].rstrip("/") + "/")}
            oid = hub._commit(found, branch, snapshot)
            pull = f"{hub.url}/datasets/{repo}/discussions/{found.pulls}" if branch.startswith("refs/pr/") else None
            self._json(
                {"commitUrl": f"{hub.url}/datasets/{repo}/commit/{oid}", "commitOid": oid, "pullRequestUrl": pull}
            )

        def tree(self, repo: str, rev: str, path: str = ""):
            found = self._repo(repo)
            resolved = found and self._snapshot(found, rev)
            if not resolved:
                return
            prefix = path.strip("/") + "/" if path.strip("/") else ""
            recursive = self.query.get("recursive", ["false"])[0].lower() == "true"
            entries, folders = [], set()
            for name, data in sorted(resolved[1].items()):
                if not name.startswith(prefix):
                    continue
                rest = name[len(prefix) :].split("/")
                for depth in range(1, len(rest) if recursive else min(2, len(rest))):
                    folders.add(prefix + "/".join(rest[:depth]))
                if recursive or len(rest) == 1:
                    entries.append(hub._entry(found, name, data))
            if prefix and not entries and not folders:
                return self._error(404, "EntryNotFound", f"{path} does not exist on {rev}")
            folder_entries = [
                {"type": "directory", "oid": git_blob_oid(f.encode()), "size": 0, "path": f} for f in folders
            ]
            self._json(sorted(folder_entries, key=lambda e: e["path"]) + entries)

        def paths_info(self, repo: str, rev: str):
            found = self._repo(repo)
            resolved = found and self._snapshot(found, rev)
            if not resolved:
                return
            form = parse_qs(self.body.decode())
            wanted = form.get("paths", []) or json.loads(self.body or b"{}").get("paths", [])
            snapshot = resolved[1]
            entries = [hub._entry(found, path, snapshot[path]) for path in wanted if path in snapshot]
            folders = [p for p in wanted if p not in snapshot and any(name.startswith(p + "/") for name in snapshot)]
            self._json(entries + [{"type": "directory", "oid": git_blob_oid(p.encode()), "path": p} for p in folders])

        # --- LFS and downloads ------------------------------------------------------------------------------------

        def lfs_batch(self, repo: str):
            if not self._repo(repo, write=True):
                return
            objects = []
            for item in json.loads(self.body)["objects"]:
                answer = {"oid": item["oid"], "size": item["size"], "authenticated": True}
                if item["oid"] not in hub.lfs_objects:
                    answer["actions"] = {"upload": {"href": f"{hub.url}/lfs-upload/{item['oid']}", "header": {}}}
                objects.append(answer)
            self._json(
                {"transfer": "basic", "objects": objects}, headers={"Content-Type": "application/vnd.git-lfs+json"}
            )

        def lfs_put(self, oid: str):
            with hub._lock:
                hub._lfs_put_attempts += 1
                attempt = hub._lfs_put_attempts
            if attempt in hub._lfs_put_failures:
                return self._send(
                    403, b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"
                )
            if hashlib.sha256(self.body).hexdigest() != oid:
                return self._send(400, b"<Error><Code>BadDigest</Code></Error>")
            hub.lfs_objects[oid] = self.body
            hub.lfs_puts.append(oid)
            self._send(200)

        def resolve(self, repo: str, rev: str, path: str):
            found = self._repo(repo)
            resolved = found and self._snapshot(found, rev)
            if not resolved:
                return
            oid, snapshot = resolved
            if path not in snapshot:
                return self._error(404, "EntryNotFound", f"{path} does not exist on {rev}")
            content = hub._content(found, path, snapshot[path])
            entry = hub._entry(found, path, snapshot[path])
            etag = entry["lfs"]["oid"] if "lfs" in entry else entry["oid"]
            headers = {"X-Repo-Commit": oid, "ETag": f'"{etag}"', "Accept-Ranges": "bytes"}
            start, end, status = 0, len(content) - 1, 200
            match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range") or "")
            if match:
                hub.ranges.append((path, self.headers["Range"]))
            if match and content:
                start, end = int(match[1]), min(int(match[2]) if match[2] else end, end)
                if start > end:
                    return self._send(416, headers={"Content-Range": f"bytes */{len(content)}"})
                status, headers["Content-Range"] = 206, f"bytes {start}-{end}/{len(content)}"
            self._send(status, content[start : end + 1], headers, content_type="application/octet-stream")

    return Handler
