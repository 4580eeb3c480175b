"""The Train tab (being built): recipe controls from the spec, preview, start / abort / resume."""

from __future__ import annotations

from typing import Any

from tunelab.ui.i18n import register, t

register({"train.wip": ("The Train tab is being built.", "训练标签页正在构建中。")})


def build(ctx, top) -> list[tuple[Any, str, str | None]]:
    import gradio as gr

    note = gr.Markdown(t("train.wip", ctx.lang))
    return [(note, "train.wip", None)]
