"""Running calls: the one way a call runs, whatever brought it in (see `runner`)."""

from voxline.calls.runner import (
    CallContext,
    CallHandler,
    CallObserver,
    CallRunner,
    CallSession,
    ConversationFactory,
    end_call,
    run_call,
)

__all__ = [
    "CallContext",
    "CallHandler",
    "CallObserver",
    "CallRunner",
    "CallSession",
    "ConversationFactory",
    "end_call",
    "run_call",
]
