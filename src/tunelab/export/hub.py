"""Upload a finished export to a Hugging Face hub repository."""

from __future__ import annotations

from pathlib import Path

from tunelab.export.errors import ExportError


def push_to_hub(folder: Path, repo_id: str, private: bool = True) -> str:
    """Create ``repo_id`` if needed and upload ``folder``; returns the repository URL.

    The export on disk is already complete when this runs, so a failure says so and gives the
    command that uploads it later.
    """
    try:
        from huggingface_hub import HfApi

        api = HfApi()
        url = api.create_repo(repo_id, exist_ok=True, private=private, repo_type="model")
        api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="model",
                          commit_message="Upload model exported with TuneLab")
        return str(url)
    except Exception as exc:  # network, auth and hub errors all end the same way for the user
        raise ExportError(
            f"the export in {folder} is complete, but uploading it to '{repo_id}' failed: "
            f"{type(exc).__name__}: {_first_line(exc)}",
            where="key 'export_hub_model_id'",
            hint=f"check the network and your token (hf auth login), then upload with: "
                 f"hf upload {repo_id} {folder} .") from None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else "no details"
