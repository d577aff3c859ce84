"""A subscription group's member (jobql/http/subscriptions.py `Member`): results offered while its
stream waits go out through the transport's `send_now` at once; otherwise, and after one that
could not, they queue, in order, for the stream."""

from __future__ import annotations

import asyncio
from typing import Any

from strawberry.types import ExecutionResult

from jobql.http.subscriptions import Member, SharedResult


def shared(n: int) -> SharedResult:
    return SharedResult.of(ExecutionResult(data={"n": n}, errors=None))


class Transport:
    def __init__(self) -> None:
        self.sent: list[Any] = []
        self.open = True

    def send_now(self, result: SharedResult) -> bool:
        if not self.open:
            return False
        self.sent.append(result.data["n"])
        return True


async def consume(member: Member, after: int, into: list[Any]) -> None:
    async for result in member.results(after):
        into.append(result.data["n"] if result.data else result)


async def test_results_offered_while_the_stream_waits_go_out_at_once() -> None:
    transport = Transport()
    member = Member(10, send_now=transport.send_now)
    streamed: list[Any] = []
    task = asyncio.create_task(consume(member, after=5, into=streamed))
    await asyncio.sleep(0)  # the stream waits
    member.offer(6, shared(6))
    member.offer(7, shared(7))
    member.offer(5, shared(5))  # at or before `after`: the stream would skip it too
    assert transport.sent == [6, 7]
    assert not member.items
    await asyncio.sleep(0)
    assert streamed == []  # nothing woke the stream
    member.end()
    await task


async def test_a_result_that_cannot_go_now_queues_with_everything_after_it_in_order() -> None:
    transport = Transport()
    member = Member(10, send_now=transport.send_now)
    streamed: list[Any] = []
    task = asyncio.create_task(consume(member, after=0, into=streamed))
    await asyncio.sleep(0)
    member.offer(1, shared(1))
    transport.open = False  # the transport asks to pause writing
    member.offer(2, shared(2))
    transport.open = True
    member.offer(3, shared(3))  # 2 is still queued: 3 goes after it, not ahead
    errors = ExecutionResult(data=None, errors=[])
    member.offer(None, errors)  # tied to no event: always through the stream
    await asyncio.sleep(0.01)
    assert transport.sent == [1]
    assert streamed == [2, 3, errors]
    member.offer(4, shared(4))  # the stream waits again: at once
    assert transport.sent == [1, 4]
    member.end()
    await task


async def test_before_the_stream_waits_results_queue() -> None:
    transport = Transport()
    member = Member(10, send_now=transport.send_now)
    member.offer(1, shared(1))  # the prelude is still running: no stream waits yet
    streamed: list[Any] = []
    task = asyncio.create_task(consume(member, after=0, into=streamed))
    await asyncio.sleep(0.01)
    member.end()
    await task
    assert (transport.sent, streamed) == ([], [1])


async def test_without_send_now_every_result_goes_through_the_stream() -> None:
    member = Member(10)
    streamed: list[Any] = []
    task = asyncio.create_task(consume(member, after=0, into=streamed))
    await asyncio.sleep(0)
    member.offer(1, shared(1))
    member.offer(2, shared(2))
    await asyncio.sleep(0.01)
    member.end()
    await task
    assert streamed == [1, 2]
