"""``--push-to-hub OWNER/NAME``: upload the export folder with huggingface_hub. Everything that can make
the upload fail (offline mode, no token, the hub unreachable or the token rejected) is checked before
any export work, so a push that cannot happen costs nothing."""

from __future__ import annotations

import os
import re
from pathlib import Path

from ltk.errors import UsageError

REPO_RE = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95}$")
OFFLINE_ENV = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")


def preflight(repo_id: str) -> str:
    """The account that will own the upload; UsageError (exit 2) with the fix otherwise."""
    if not REPO_RE.match(repo_id):
        raise UsageError(f"--push-to-hub {repo_id!r} is not a hub repository id; write it as OWNER/NAME")
    for var in OFFLINE_ENV:
        if os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on"):
            raise UsageError(
                f"--push-to-hub needs the Hugging Face hub, but {var}={os.environ[var]} says this machine is "
                f"offline.\n    fix: unset {var} where the hub is reachable, or export without --push-to-hub "
                "and upload the folder later with `hf upload OWNER/NAME DIR`"
            )
    from huggingface_hub import HfApi, get_token

    token = get_token()
    if not token:
        raise UsageError(
            "--push-to-hub needs a Hugging Face token and none is set.\n"
            "    fix: `hf auth login` (or set HF_TOKEN to a token with write access), then rerun"
        )
    try:
        who = HfApi().whoami(token=token)
    except Exception as exc:  # unreachable, rejected token: either way nothing could be uploaded
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(
            f"--push-to-hub: the hub did not accept the token or could not be reached ({first}).\n"
            "    fix: check the network and `hf auth whoami`, or export without --push-to-hub and upload later"
        ) from None
    return str(who.get("name", "?"))


def upload(folder: Path, repo_id: str, *, private: bool) -> str:
    """Create the repository if needed and upload ``folder``; returns the repository's URL."""
    from huggingface_hub import HfApi

    api = HfApi()
    url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    api.upload_folder(
        repo_id=repo_id,
        folder_path=str(folder),
        commit_message="Upload with ltk export",
        repo_type="model",
    )
    return str(getattr(url, "url", url))
