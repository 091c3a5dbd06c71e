"""How worker threads hand results back: they post a Message to a widget or screen, and nothing else.

Textual's ``post_message`` is safe from any thread. :func:`post` is it, quiet when the receiver has left
(a screen closed, the app quitting: then there is nobody to tell, and a clean quit must stay clean).
"""

from __future__ import annotations

from textual.message import Message
from textual.message_pump import MessagePump


def post(receiver: MessagePump, message: Message) -> bool:
    """Post ``message`` to ``receiver`` from any thread; False when it was not delivered (the receiver or the
    app has gone)."""
    try:
        return receiver.post_message(message)
    except RuntimeError:  # NoActiveAppError (the receiver left the DOM), or the event loop is closed
        return False
