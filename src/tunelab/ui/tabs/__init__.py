"""One module per board tab; each exposes ``build(ctx, top)`` (see ``tunelab.ui.app``)."""
