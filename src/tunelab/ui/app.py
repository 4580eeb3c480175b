"""The board page: top bar + the Train / Evaluate / Chat / Export / Runs tabs, and its launch.

Each tab lives in ``tunelab.ui.tabs.<name>`` and exposes ``build(ctx, top)`` returning its
labelled components, which the language switch relabels.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from typing import Any

from tunelab.ui.context import BoardContext
from tunelab.ui.i18n import register, t

TABS = ("train", "evaluate", "chat", "export", "runs")

register({
    "app.title": ("TuneLab Board", "TuneLab 控制台"),
    "app.subtitle": ("Train, watch, chat, evaluate and export; every action calls the same code as "
                     "the `tunelab` command.", "训练、监控、对话、评估与导出；每个操作调用与 `tunelab` "
                     "命令相同的代码。"),
    "tab.train": ("Train", "训练"),
    "tab.evaluate": ("Evaluate", "评估"),
    "tab.chat": ("Chat", "对话"),
    "tab.export": ("Export", "导出"),
    "tab.runs": ("Runs", "运行记录"),
    "app.tab_missing": ("This tab is not available in this version.", "此版本中该标签页尚不可用。"),
})


def _tab_module(name: str):
    """``tunelab.ui.tabs.<name>`` when it exists (a tab still being built shows a note)."""
    full = f"tunelab.ui.tabs.{name}"
    return importlib.import_module(full) if importlib.util.find_spec(full) else None


def _preload() -> None:
    """Import transformers up front: Gradio runs handlers in threads, and two threads importing
    it lazily at once can see a half-initialised module ("cannot import name AutoTokenizer")."""
    import transformers  # noqa: F401
    from transformers import AutoTokenizer, TrainingArguments  # noqa: F401


def build_board(ctx: BoardContext):
    """The whole board as a ``gr.Blocks`` (not launched)."""
    import gradio as gr

    _preload()
    from tunelab.ui.top import adapter_choices, build_top

    with gr.Blocks(title=t("app.title", ctx.lang)) as board:
        heading = gr.Markdown(_heading(ctx.lang), elem_id="app-heading")
        top, labelled = build_top(ctx)
        labelled = [(heading, "app.heading", None), *labelled]
        for name in TABS:
            with gr.Tab(t(f"tab.{name}", ctx.lang), id=name, elem_id=f"tab-{name}") as tab:
                labelled.append((tab, f"tab.{name}", None))
                module = _tab_module(name)
                if module is None:
                    note = gr.Markdown(t("app.tab_missing", ctx.lang))
                    labelled.append((note, "app.tab_missing", None))
                else:
                    labelled.extend(module.build(ctx, top))
        _wire_language(top.lang, labelled)
        # The page is built once; a refreshed page or a second tab re-reads what is on disk.
        board.load(lambda: gr.update(choices=adapter_choices(ctx)), None, top.adapters)
    return board


def _heading(lang: str) -> str:
    return f"## {t('app.title', lang)}\n{t('app.subtitle', lang)}"


def relabel(component: Any, label_key: str, info_key: str | None, lang: str) -> Any:
    """The gr.update that shows ``component`` in ``lang``."""
    import gradio as gr

    if label_key == "app.heading":
        return gr.update(value=_heading(lang))
    text = t(label_key, lang)
    if isinstance(component, (gr.Button, gr.Markdown)):
        return gr.update(value=text)
    if isinstance(component, gr.Tab):
        return gr.update(label=text)
    if info_key:
        return gr.update(label=text, info=t(info_key, lang))
    return gr.update(label=text)


def _wire_language(lang_box: Any, labelled: list[tuple[Any, str, str | None]]) -> None:
    components = [c for c, _, _ in labelled]

    def switch(lang):
        return [relabel(c, label, info, lang) for c, label, info in labelled]

    lang_box.change(switch, lang_box, components)


def build_chat_only(ctx: BoardContext, adapters: list[str]):
    """Just the Chat page (``--chat-only``), with ``adapters`` loaded at start."""
    _preload()
    module = _tab_module("chat")
    if module is None or not hasattr(module, "build_chat_page"):
        from tunelab.errors import ConfigError

        raise ConfigError("the chat page is not available in this version", where="--chat-only")
    return module.build_chat_page(ctx, adapters)


def launch(blocks: Any, *, host: str, port: int, auth: list[tuple[str, str]] | None,
           share: bool, block: bool = True) -> Any:
    """Serve ``blocks``; with ``share`` try Gradio's tunnel and keep serving locally when it fails."""
    blocks.queue(default_concurrency_limit=4)
    blocks.launch(server_name=host, server_port=port, auth=auth, share=share, prevent_thread_lock=True,
                  show_error=True, quiet=False)
    if share and not getattr(blocks, "share_url", None):
        print("tunelab webui: the share link could not be created (Gradio's tunnel needs the "
              f"internet); still serving locally on http://{host}:{port}", file=sys.stderr, flush=True)
    if block:
        blocks.block_thread()
    return blocks
