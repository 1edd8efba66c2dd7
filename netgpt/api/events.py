"""Live state changes for server-sent events: worker threads publish, each stream subscribes."""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass
from typing import Any

__all__ = ["EventBus", "LiveEvent"]


@dataclass(frozen=True)
class LiveEvent:
    """One change: ``kind`` is the SSE event name (intent, run, links, watch, policy)."""

    kind: str
    data: dict[str, Any]

    def encode(self) -> str:
        """The event in the text/event-stream wire format."""
        return f"event: {self.kind}\ndata: {json.dumps(self.data, default=str)}\n\n"


class EventBus:
    """Fan-out of :class:`LiveEvent` to every subscribed stream; safe to publish from any thread.

    A stream that falls more than ``backlog`` events behind loses the oldest ones (a slow
    browser must not grow the server's memory).
    """

    def __init__(self, backlog: int = 256) -> None:
        self.backlog = backlog
        self._subscribers: dict[
            int, tuple[asyncio.AbstractEventLoop, asyncio.Queue[LiveEvent]]
        ] = {}
        self._lock = threading.Lock()
        self._next = 0

    def subscribe(self) -> tuple[int, asyncio.Queue[LiveEvent]]:
        """A new queue fed from now on; call from the stream's event loop."""
        queue: asyncio.Queue[LiveEvent] = asyncio.Queue(maxsize=self.backlog)
        with self._lock:
            self._next += 1
            self._subscribers[self._next] = (asyncio.get_running_loop(), queue)
            return self._next, queue

    def unsubscribe(self, key: int) -> None:
        """Stop feeding the queue ``subscribe`` returned with ``key``."""
        with self._lock:
            self._subscribers.pop(key, None)

    @property
    def subscribers(self) -> int:
        """How many streams are open."""
        with self._lock:
            return len(self._subscribers)

    def publish(self, kind: str, data: dict[str, Any]) -> None:
        """Send one event to every stream."""
        event = LiveEvent(kind, data)
        with self._lock:
            targets = list(self._subscribers.values())
        for loop, queue in targets:
            try:
                loop.call_soon_threadsafe(_offer, queue, event)
            except RuntimeError:  # that stream's loop has closed
                continue


def _offer(queue: asyncio.Queue[LiveEvent], event: LiveEvent) -> None:
    if queue.full():
        queue.get_nowait()
    queue.put_nowait(event)
