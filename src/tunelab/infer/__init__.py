"""Chat with a model: the ``ChatEngine`` interface, its backends, and the terminal chat."""

from tunelab.infer.engine import ChatEngine, Job, create_engine
from tunelab.infer.params import SamplingParams
from tunelab.infer.request import ChatDelta, ChatRequest, ChatResponse, Choice, RequestError

__all__ = ["ChatDelta", "ChatEngine", "ChatRequest", "ChatResponse", "Choice", "Job",
           "RequestError", "SamplingParams", "create_engine"]
