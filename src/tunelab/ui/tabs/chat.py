"""The Chat tab: load a base model with or without adapters, chat with streaming answers (the
thinking of reasoning templates shown apart), and the named ``/chat`` API endpoint.

``build_chat_page`` serves the same panel alone for ``tunelab webui --chat-only --adapter RUN``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tunelab.config import spec_for
from tunelab.ui.context import BoardContext
from tunelab.ui.i18n import register, t
from tunelab.ui.tabs.chat_session import (SAMPLING_KEYS, ChatSession, chat_recipe, describe_error,
                                          engine_messages)

register({
    "chat.heading": ("Chat with a model", "与模型对话"),
    "chat.load": ("Load model", "加载模型"),
    "chat.unload": ("Unload model", "卸载模型"),
    "chat.loading": ("Loading {model} ...", "正在加载 {model} ..."),
    "chat.loaded": ("Loaded: {model}", "已加载：{model}"),
    "chat.loaded_adapters": ("Loaded: {model} with adapters {adapters}", "已加载：{model}，适配器 {adapters}"),
    "chat.unloaded": ("Model unloaded; memory freed.", "模型已卸载，内存已释放。"),
    "chat.none": ("No model loaded. Pick a model (and adapters) in the top bar and press Load model.",
                  "尚未加载模型。请在顶部选择模型（和适配器）后点击“加载模型”。"),
    "chat.error": ("Error: {error}", "错误：{error}"),
    "chat.system": ("System prompt", "系统提示词"),
    "chat.system.info": ("Sent before the conversation; empty uses the recipe's default_system.",
                         "放在对话之前发送；留空则使用配方中的 default_system。"),
    "chat.bot": ("Conversation", "对话"),
    "chat.input": ("Your message", "你的消息"),
    "chat.send": ("Send", "发送"),
    "chat.clear": ("Clear history", "清空历史"),
    "chat.cleared": ("History cleared.", "历史已清空。"),
    "chat.thinking": ("Thinking", "思考过程"),
    "chat.sampling": ("Sampling settings", "采样设置"),
    "chat.temperature": ("Temperature", "温度（temperature）"),
    "chat.top_p": ("Top-p", "Top-p（核采样）"),
    "chat.top_k": ("Top-k", "Top-k 采样"),
    "chat.max_new_tokens": ("Max new tokens", "最大生成长度（max_new_tokens）"),
    "chat.repetition_penalty": ("Repetition penalty", "重复惩罚（repetition_penalty）"),
})

# Upper ends of the sliders where the recipe spec sets no maximum (a display range only: the
# engine checks the values, and the API accepts any value the engine does).
SLIDER_TOP = {"temperature": 2.0, "top_p": 1.0, "top_k": 200, "max_new_tokens": 4096,
              "repetition_penalty": 2.0}
SLIDER_STEP = {"temperature": 0.05, "top_p": 0.01, "top_k": 1, "max_new_tokens": 1,
               "repetition_penalty": 0.01}


# The sliders' hints are the recipe keys' own help (the spec), in both languages.
register({f"chat.{key}.info": (spec_for(key).help, spec_for(key).help_zh) for key in SAMPLING_KEYS})


def key_range(key: str) -> tuple[Any, float, float]:
    """(default, low, high) of a sampling key's slider, from the recipe spec."""
    spec = spec_for(key)
    low = spec.min if spec.min is not None else 0
    if spec.min_exclusive:
        low += SLIDER_STEP[key]
    return spec.default, low, spec.max if spec.max is not None else SLIDER_TOP[key]


class ChatPanel:
    """The chat controls: conversation, input, system prompt, sampling sliders, status."""

    def __init__(self, lang: str, session: ChatSession):
        import gradio as gr

        self.session = session
        self.status = gr.Markdown(t("chat.none", lang), elem_id="chat-status")
        self.bot = gr.Chatbot(label=t("chat.bot", lang), height=380, elem_id="chat-bot")
        with gr.Row():
            self.input = gr.Textbox(label=t("chat.input", lang), scale=5, elem_id="chat-input")
            self.send = gr.Button(t("chat.send", lang), variant="primary", scale=1, elem_id="chat-send")
            self.clear = gr.Button(t("chat.clear", lang), scale=1, elem_id="chat-clear")
        self.system = gr.Textbox(label=t("chat.system", lang), info=t("chat.system.info", lang),
                                 lines=2, elem_id="chat-system")
        with gr.Accordion(t("chat.sampling", lang), open=False) as self.sampling_box:
            self.sliders = [self._slider(key, lang) for key in SAMPLING_KEYS]

    @staticmethod
    def _slider(key: str, lang: str) -> Any:
        import gradio as gr

        default, low, high = key_range(key)
        return gr.Slider(low, high, value=default, step=SLIDER_STEP[key], label=t(f"chat.{key}", lang),
                         info=t(f"chat.{key}.info", lang), elem_id=f"chat-{key}")

    def labelled(self) -> list[tuple[Any, str, str | None]]:
        pairs = [(self.bot, "chat.bot", None), (self.input, "chat.input", None),
                 (self.send, "chat.send", None), (self.clear, "chat.clear", None),
                 (self.system, "chat.system", "chat.system.info"), (self.sampling_box, "chat.sampling", None)]
        return pairs + [(s, f"chat.{k}", f"chat.{k}.info") for s, k in zip(self.sliders, SAMPLING_KEYS)]

    def wire(self, lang_box: Any, thinking_box: Any, default_lang: str) -> None:
        """Send (Enter or button), streaming into the conversation; Clear; and ``/chat``."""
        import gradio as gr

        extra = [c for c in (lang_box, thinking_box) if c is not None]

        def respond(message, history, system, *rest):
            lang, thinking, values = self._split(rest, lang_box, thinking_box, default_lang)
            yield from self._respond(message, history or [], system, values, thinking, lang)

        inputs = [self.input, self.bot, self.system, *self.sliders, *extra]
        outputs = [self.bot, self.input, self.status]
        for event in (self.send.click, self.input.submit):
            event(respond, inputs, outputs, api_visibility="private")
        self.clear.click(lambda *a: ([], t("chat.cleared", a[0] if a else default_lang)),
                         [lang_box] if lang_box is not None else None, [self.bot, self.status],
                         api_visibility="private")
        gr.api(self.api_function(), api_name="chat")

    @staticmethod
    def _split(rest: tuple, lang_box: Any, thinking_box: Any, default_lang: str):
        values = dict(zip(SAMPLING_KEYS, rest[:len(SAMPLING_KEYS)]))
        tail = list(rest[len(SAMPLING_KEYS):])
        lang = tail.pop(0) if lang_box is not None else default_lang
        thinking = tail.pop(0) if thinking_box is not None else None
        return lang or default_lang, thinking, values

    def _respond(self, message: str, history: list, system: str, values: dict, thinking: Any, lang: str):
        """Stream one answer: the thinking (collapsible) and the reply appear as they arrive."""
        message = (message or "").strip()
        if not message:
            yield history, "", self._status(lang)
            return
        asked = [*history, {"role": "user", "content": message}]
        try:
            deltas = self.session.stream(engine_messages(history, message, system), values, thinking)
            reasoning, answer = "", ""
            for delta in deltas:
                reasoning += delta.reasoning
                answer += delta.content
                yield asked + _assistant(reasoning, answer, lang), "", self._status(lang)
        except Exception as exc:  # shown on the page, the message kept for a retry; the board lives on
            yield history, message, t("chat.error", lang, error=describe_error(exc))

    def _status(self, lang: str) -> str:
        loaded = self.session.loaded
        if loaded is None:
            return t("chat.none", lang)
        if loaded.adapters:
            return t("chat.loaded_adapters", lang, model=loaded.model, adapters=", ".join(loaded.adapters))
        return t("chat.loaded", lang, model=loaded.model)

    def api_function(self):
        session = self.session

        def chat(message: str, history: list[dict] | None = None, system: str = "",
                 temperature: float | None = None, top_p: float | None = None, top_k: int | None = None,
                 max_new_tokens: int | None = None, repetition_penalty: float | None = None) -> str:
            """The reply to ``message`` after ``history`` (role/content dicts), with optional system
            prompt and sampling settings (unset ones keep the loaded recipe's)."""
            import gradio as gr

            settings = {"temperature": temperature, "top_p": top_p, "top_k": top_k,
                        "max_new_tokens": max_new_tokens, "repetition_penalty": repetition_penalty}
            try:
                return session.reply(engine_messages(history, message, system), settings)[1]
            except Exception as exc:
                raise gr.Error(describe_error(exc)) from None

        return chat


def _assistant(reasoning: str, answer: str, lang: str) -> list[dict]:
    turns = []
    if reasoning.strip():
        turns.append({"role": "assistant", "content": reasoning.strip(),
                      "metadata": {"title": t("chat.thinking", lang)}})
    if answer or not turns:
        turns.append({"role": "assistant", "content": answer})
    return turns


def _quantization(value: Any) -> int | None:
    return int(value) if value not in (None, "", "none") else None


def _template(value: Any) -> str | None:
    from tunelab.ui.top import TOKENIZER_TEMPLATE

    return None if value in (None, "", TOKENIZER_TEMPLATE) else value


def checked_model(ctx: BoardContext, model: str | None) -> str | None:
    """A typed model: local folders must lie under the board's roots; names and hub ids pass."""
    model = (model or "").strip() or None
    if model and Path(model).expanduser().exists():
        return str(ctx.resolve_path(model, "model"))
    return model


def build(ctx: BoardContext, top: Any) -> list[tuple[Any, str, str | None]]:
    """The Chat tab of the board: Load / Unload from the top bar's choices, then the panel."""
    import gradio as gr

    session = ChatSession()
    heading = gr.Markdown(t("chat.heading", ctx.lang))
    with gr.Row():
        load = gr.Button(t("chat.load", ctx.lang), variant="primary", elem_id="chat-load")
        unload = gr.Button(t("chat.unload", ctx.lang), elem_id="chat-unload")
    panel = ChatPanel(ctx.lang, session)

    def do_load(model, adapters, template, thinking, quant, lang):
        shown = model or (adapters[0] if adapters else "?")
        yield t("chat.loading", lang, model=shown)
        try:
            recipe = chat_recipe(checked_model(ctx, model),
                                 [str(ctx.resolve_path(a, "adapter")) for a in adapters or []],
                                 _template(template), thinking, _quantization(quant))
            session.load(recipe)
        except Exception as exc:  # every failure is a message on the page
            yield t("chat.error", lang, error=describe_error(exc))
            return
        yield panel._status(lang)

    def do_unload(lang):
        return t("chat.unloaded", lang) if session.unload() else t("chat.none", lang)

    load.click(do_load, [top.model, top.adapters, top.template, top.thinking, top.quantization, top.lang],
               panel.status, api_visibility="private")
    unload.click(do_unload, top.lang, panel.status, api_visibility="private")
    panel.wire(top.lang, top.thinking, ctx.lang)
    return [(heading, "chat.heading", None), (load, "chat.load", None), (unload, "chat.unload", None),
            *panel.labelled()]


def build_chat_page(ctx: BoardContext, adapters: list[str]) -> Any:
    """Only the chat, with ``adapters`` (run or adapter folders) loaded before the page serves;
    the base model is the one the first adapter records. Raises TuneLabError when loading fails."""
    import gradio as gr

    session = ChatSession()
    session.load(chat_recipe(None, adapters))
    with gr.Blocks(title=t("chat.heading", ctx.lang)) as page:
        gr.Markdown(f"## {t('chat.heading', ctx.lang)}")
        panel = ChatPanel(ctx.lang, session)
        panel.wire(None, None, ctx.lang)
        page.load(lambda: panel._status(ctx.lang), None, panel.status, api_visibility="private")
    return page
