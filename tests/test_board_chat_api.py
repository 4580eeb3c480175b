"""The chat page's named API endpoint, called with the official gradio_client on a real
`tunelab webui --chat-only --adapter RUN` subprocess serving an adapter trained by the CLI."""

import pytest

from board_support import board_env, running_board, start_board
from board_tabs_support import identity_answers, train_identity_run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.getbasetemp() / "board-tabs"


@pytest.fixture(scope="module")
def chat_board(workdir, tunelab_home):
    import os

    workdir.mkdir(exist_ok=True)
    env = board_env({**os.environ, "TUNELAB_HOME": str(tunelab_home)})
    train_identity_run(workdir, env)
    with running_board(workdir, env, "--chat-only", "--adapter", "saves/ident") as board:
        yield board


def test_client_gets_the_trained_identity_answer(chat_board):
    from gradio_client import Client

    answers = identity_answers()
    client = Client(chat_board.url, verbose=False)
    # The call users publish: just the message; the loaded recipe's sampling defaults apply.
    assert client.predict("Who are you?", api_name="/chat") == answers["Who are you?"]
    # History, system prompt and sampling settings after the message (greedy here).
    alone = client.predict("What is your name?", [], "", 0.0, api_name="/chat")
    assert alone == answers["What is your name?"]
    # The history reaches the model: the same question after a turn is a different context
    # (the adapter never saw two-turn chats, so its greedy answer changes).
    history = [{"role": "user", "content": "Who are you?"},
               {"role": "assistant", "content": answers["Who are you?"]}]
    assert client.predict("What is your name?", history, "", 0.0, api_name="/chat") != alone
    # Keyword sampling settings apply: 3 new tokens cut the answer short.
    short = client.predict(message="What is your name?", temperature=0.0, max_new_tokens=3, api_name="/chat")
    assert short and answers["What is your name?"].startswith(short) and len(short) < len(alone)

def test_bad_settings_come_back_as_a_message_naming_the_field(chat_board):
    from gradio_client import Client

    client = Client(chat_board.url, verbose=False)
    with pytest.raises(Exception, match="top_p"):
        client.predict("Hi", None, "", 0.5, 0.0, api_name="/chat")
    # The board is still serving after the refusal.
    assert client.predict("Who are you?", temperature=0.0, api_name="/chat") == identity_answers()["Who are you?"]


def test_chat_only_with_a_missing_adapter_refuses_to_start(workdir, tunelab_home):
    import os

    env = board_env({**os.environ, "TUNELAB_HOME": str(tunelab_home)})
    with pytest.raises(RuntimeError) as failure:
        start_board(workdir, env, "--chat-only", "--adapter", "saves/no-such-run")
    output = str(failure.value)
    assert "no-such-run does not exist" in output and "Traceback" not in output
