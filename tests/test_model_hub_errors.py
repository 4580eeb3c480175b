"""Hub access errors a user meets with gated or private models: the message names the model's
page and how to pass a token. The hub is unreachable here, so the errors are the hub library's own
exception types, raised and chained the way transformers chains them."""

import httpx
import pytest

from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

from tunelab.model.loader import _hub_error


def _response(status: int, repo: str) -> httpx.Response:
    return httpx.Response(status, request=httpx.Request("GET", f"https://huggingface.co/{repo}/resolve/main/config.json"))


def _raised_by_transformers(inner: Exception) -> OSError:
    try:
        try:
            raise inner
        except Exception as exc:
            raise OSError(f"You are trying to access a repository: {exc}") from exc
    except OSError as outer:
        return outer


def test_a_gated_model_names_its_licence_page_and_the_token():
    err = _hub_error("meta-llama/Llama-3.2-1B", _raised_by_transformers(
        GatedRepoError("403 Client Error", response=_response(403, "meta-llama/Llama-3.2-1B"))))
    assert "gated model" in err.problem and "licence" in err.problem
    assert "https://huggingface.co/meta-llama/Llama-3.2-1B" in err.hint and "HF_TOKEN" in err.hint


def test_a_private_or_missing_model_says_so_and_names_the_token():
    err = _hub_error("someone/private", _raised_by_transformers(
        RepositoryNotFoundError("401 Client Error", response=_response(401, "someone/private"))))
    assert "not found on the hub, or it is private" in err.problem
    assert "https://huggingface.co/someone/private" in err.hint and "HF_TOKEN" in err.hint


@pytest.mark.parametrize("exc", [OSError("connection refused"), TimeoutError("timed out")])
def test_other_hub_failures_keep_the_offline_advice(exc):
    err = _hub_error("Qwen/Qwen2.5-0.5B", exc)
    assert "not in the local cache" in err.problem and "hf download" in err.hint
