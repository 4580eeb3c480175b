"""The TuneLab Board: a Gradio page over the same functions the CLI calls (``tunelab webui``).

Layout: :mod:`app` builds the page (top bar + one tab per module in :mod:`tunelab.ui.tabs`),
:mod:`context` holds the launch settings and the path guard, :mod:`i18n` the en/zh strings.
"""
