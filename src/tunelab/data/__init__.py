"""The data pipeline: ``dataset_info.json`` -> rows -> :class:`Conversation` -> token ids -> batches.

Modules, in the order data flows through them: ``registry`` (dataset specs), ``readers`` (rows
with ``file:row`` locations), ``convert`` (rows to samples, with precise row errors), ``report``
(validation reports), ``templates`` (chat templates), ``encode`` (ids and label masks),
``collate`` (packing and batches) and ``pipeline`` (all of it, cached).
"""
