"""The account's limits as the fake plays them: concurrency slots, the pending queue, the POST
rate, completion delays and failures."""

from __future__ import annotations

import heapq
import math
import random
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, Deque, Dict, List, Optional, Tuple, Union

from ..client import MAX_SECONDS
from ..payloads import check_number
from .server import ApiError

if TYPE_CHECKING:
    from . import FakeLeonardo

QUEUE_PER_SLOT = 20  # "1 concurrency comes with 20 image generation with status pending" (limits page)
MAX_SLOTS = 1000  # advance() keeps one entry per slot
WINDOW = 60.0  # seconds over which posts_per_minute counts
Delay = Union[float, Tuple[float, float]]


def timestamp() -> str:
    """Now as the API writes it: ISO 8601 in UTC, with milliseconds."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")[:-6] + "Z"


def delay_range(delay: Delay) -> Tuple[float, float]:
    """(min, max) of a completion_delay: a number of seconds or a (min, max) range in order, from
    0 to a week (the client's longest wait; finite, as an infinite one makes durations NaN)."""
    low, high = delay if isinstance(delay, tuple) and len(delay) == 2 else (delay, delay)
    check_number("completion_delay", low, 0, MAX_SECONDS)
    check_number("completion_delay's max", high, low, MAX_SECONDS)
    return low, high


@dataclass
class Job:
    """A generation (image, motion, v2) or texture generation: queued, running, then done."""

    id: str
    created: float  # Account.clock() at creation
    created_at: str
    fields: Dict[str, Any]
    duration: float  # seconds it runs, drawn at its creation from the completion_delay of then
    fail: bool
    images: List[Dict[str, Any]] = field(default_factory=list)  # their URLs are paths on the fake
    started: Optional[float] = None  # when it got a slot
    final: Optional[str] = None  # COMPLETE or FAILED once reached

    @property
    def status(self) -> str:
        return self.final or "PENDING"


class Account:
    """Jobs beyond ``concurrency_slots`` wait PENDING in order and start as slots free up; past
    the queue or ``posts_per_minute`` a create gets 429. Called with the API's lock held."""

    def __init__(self, fake: FakeLeonardo, clock: Callable[[], float] = time.monotonic) -> None:
        self.fake, self.clock = fake, clock
        self.random = random.Random(fake.seed)
        self.active: List[Job] = []  # not finished yet, in order of creation
        self.posts: Dict[str, Deque[float]] = {}  # per endpoint, the times of its counted POSTs of the last minute
        self.advanced = -math.inf  # when advance() last ran

    def admit(self, endpoint: Optional[str]) -> None:
        """Raise the API's 429 when a new job is over a limit; endpoint: the generation endpoint POSTed, as inject()
        takes it ("/api/rest/v2/generations"), each with posts_per_minute of its own (None: not rate limited)."""
        now, limit = self.clock(), self.fake.posts_per_minute
        posts = self.posts.setdefault(endpoint, deque()) if endpoint is not None else deque()
        while posts and posts[0] <= now - WINDOW:
            posts.popleft()
        if endpoint is not None and limit is not None and len(posts) >= limit:
            # one more is allowed when the window holds limit - 1 posts (the limit may have been lowered)
            wait = max(1, math.ceil(posts[len(posts) - limit] + WINDOW - now))
            message = "rate limit exceeded: at most %d requests a minute to POST %s" % (limit, endpoint)
            raise ApiError(429, message, "too-many-requests", [("Retry-After", str(wait))])
        queue = QUEUE_PER_SLOT * self.fake.concurrency_slots
        if len(self.active) >= queue:
            raise ApiError(429, "queue full: at most %d generations may be pending" % queue, "too-many-requests")
        posts.append(now)

    def draws(self) -> Tuple[float, bool]:
        """(duration, fails?) for a new job, from the settings of now: reproducible from the fake's seed."""
        draw, chance = self.random.random(), self.random.random()
        low, high = delay_range(self.fake.completion_delay)
        return low + (high - low) * draw, self.fake.fail_new_generations or chance < self.fake.fail_rate

    def advance(self) -> List[Job]:
        """Start queued jobs as slots free up, finish those whose time is up; returns the jobs
        finished now. An event simulation up to now: results never depend on polling. A queued
        job never starts before the last run: a slot freed since (a running job deleted, more
        slots) is free from then, not since ever (whoever changes the state runs advance() first)."""
        now = self.clock()
        slots = self.fake.concurrency_slots
        free = sorted(job.started + job.duration for job in self.active if job.started is not None)
        free = free[-slots:] + [-math.inf] * (slots - len(free))  # when each slot frees (slots >= 1)
        heapq.heapify(free)
        for job in [job for job in self.active if job.started is None]:
            start = max(free[0], job.created, self.advanced)
            if start > now:
                break
            job.started = start
            heapq.heapreplace(free, start + job.duration)
        done = [job for job in self.active if job.started is not None and job.started + job.duration <= now]
        for job in done:
            job.final = "FAILED" if job.fail else "COMPLETE"
            self.active.remove(job)
        self.advanced = now
        return done
