"""Push an exported hub package to a Hugging Face dataset repository with huggingface_hub.

`upload_folder` does the transfer. Re-running after an interruption resumes: the Hub answers that shards it
already holds need no upload (LFS batch / Xet deduplication), so only what is missing is sent. Remote files are
never deleted unless asked; files that would break `load_dataset` (an old loading script, shards of an earlier
export under data/) stop the push before anything is sent.
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass
from pathlib import Path

from imagenet_sketch_tools.common.errors import UserError, causes
from imagenet_sketch_tools.hub.card import DATA_FILES, INFOS_FILE, REPOCARD_FILE

COMMIT_MESSAGE = "Upload ImageNet-Sketch as parquet (imagenet-sketch export)"


@dataclass(frozen=True)
class PushSummary:
    repo_id: str
    files: int
    bytes: int
    commit_url: str
    pr_url: str | None
    deleted: list[str]


def package_files(directory: Path) -> list[str]:
    """The package's files, relative POSIX paths; fails if `directory` is not a complete export."""
    if not (directory / REPOCARD_FILE).is_file() or not (directory / INFOS_FILE).is_file():
        raise UserError(f"'{directory}' is not an exported package (no README.md / dataset_infos.json); run export")
    files = sorted(
        path.relative_to(directory).as_posix()
        for path in directory.rglob("*")
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(directory).parts)
    )
    if not any(fnmatch.fnmatch(name, DATA_FILES) for name in files):
        raise UserError(f"'{directory}' holds no data/train-*.parquet shards; run `imagenet-sketch export` again")
    return files


def conflicting_remote_files(remote: list[str], local: list[str], repo_id: str) -> list[str]:
    """Remote files that would make load_dataset fail or read wrong rows next to this package."""
    script = repo_id.split("/")[-1] + ".py"  # datasets >= 4 refuses a repo holding a loading script of this name
    local_set = set(local)
    return [name for name in remote if name == script or (fnmatch.fnmatch(name, DATA_FILES) and name not in local_set)]


def push(
    directory: str | os.PathLike,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    create_pr: bool = False,
    delete_stale: bool = False,
    token: str | None = None,
) -> PushSummary:
    """Create `repo_id` (a dataset repo) if needed and upload the package in `directory` to it."""
    from huggingface_hub import HfApi, get_token
    from huggingface_hub.errors import HfHubHTTPError

    directory = Path(directory)
    local = package_files(directory)
    if create_pr and revision:
        raise UserError("--create-pr opens a pull request against main; drop --revision, or drop --create-pr")
    if not (token or get_token()):
        raise UserError("no Hugging Face token: run `hf auth login` or set HF_TOKEN, then run the command again")
    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        if revision:
            api.create_branch(repo_id, repo_type="dataset", branch=revision, exist_ok=True)
        remote = api.list_repo_files(repo_id, repo_type="dataset", revision=revision)
        conflicts = conflicting_remote_files(remote, local, repo_id)
        if conflicts and not delete_stale:
            raise UserError(
                f"{repo_id} holds {len(conflicts)} file(s) that would break load_dataset next to this package "
                f"({', '.join(conflicts[:3])}{', ...' if len(conflicts) > 3 else ''}); nothing was sent. "
                "Pass --delete-stale to delete them in the same commit"
            )
        commit = api.upload_folder(
            repo_id=repo_id,
            folder_path=directory,
            repo_type="dataset",
            revision=revision,
            create_pr=create_pr,
            commit_message=COMMIT_MESSAGE,
            delete_patterns=conflicts or None,
        )
    except HfHubHTTPError as error:
        raise UserError(f"the Hub refused the push to {repo_id}: {_first_line(error)}; {_RESUME}") from error
    except (OSError, RuntimeError) as error:
        raise UserError(f"the push to {repo_id} was interrupted: {_first_line(error)}; {_RESUME}") from error
    size = sum((directory / name).stat().st_size for name in local)
    return PushSummary(repo_id, len(local), size, commit.commit_url, commit.pr_url, conflicts)


_RESUME = "run the same command again to resume (files already on the Hub are not sent again)"


def _first_line(error: BaseException) -> str:
    """The error and its causes' first lines: huggingface_hub wraps the failing request's error."""
    parts: list[str] = []
    for cause in causes(error):
        line = next((line.strip() for line in str(cause).splitlines() if line.strip()), type(cause).__name__)
        if line.rstrip(".") not in parts:
            parts.append(line.rstrip("."))
        if len(parts) == 3:
            break
    return ": ".join(parts)
