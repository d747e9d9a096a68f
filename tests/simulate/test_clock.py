"""The virtual-time loop: timers in order, cancellation, asyncio's own timeouts, and a stall that is reported."""

from __future__ import annotations

import asyncio

import pytest

from stellwerk.simulate.clock import Stalled, VirtualLoop


def run(main: object) -> VirtualLoop:
    loop = VirtualLoop()
    try:
        loop.run_until_complete(main)  # type: ignore[arg-type]
    finally:
        loop.close()
    return loop


def test_timers_run_in_order_of_time_then_of_setting_and_the_clock_jumps_to_each() -> None:
    seen: list[tuple[str, float]] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, VirtualLoop)
        loop.call_later(2.0, lambda: seen.append(("b", loop.time())))
        loop.at(1.0, lambda: seen.append(("a", loop.time())))
        loop.call_at(2.0, lambda: seen.append(("c", loop.time())))
        loop.at(2.0, lambda: seen.append(("d", loop.time())))
        await loop.sleep(3.0)
        await asyncio.sleep(600)
        seen.append(("end", loop.time()))

    run(main())
    assert seen == [("a", 1.0), ("b", 2.0), ("c", 2.0), ("d", 2.0), ("end", 603.0)]


def test_cancelled_timers_do_not_run_even_when_most_of_the_heap_is_cancelled() -> None:
    ran: list[int] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        handles = [loop.call_later(1.0 + i, ran.append, i) for i in range(1000)]
        for i, h in enumerate(handles):
            if i % 10:  # keep every tenth
                h.cancel()
        await asyncio.sleep(2000)

    run(main())
    assert ran == list(range(0, 1000, 10))


def test_asyncio_timeouts_and_wait_for_expire_in_virtual_time() -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(5):
                await asyncio.sleep(10)
        assert loop.time() == 5.0
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.sleep(10), 1)
        assert await asyncio.wait_for(asyncio.sleep(1, "x"), 2) == "x"
        return loop.time()

    loop = VirtualLoop()
    try:
        assert loop.run_until_complete(main()) == 7.0
    finally:
        loop.close()


def test_a_cancelled_sleep_ends_at_once_and_its_timer_does_nothing_later() -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, VirtualLoop)
        sleeper = asyncio.ensure_future(loop.sleep(100))
        await loop.sleep(1)
        sleeper.cancel()
        with pytest.raises(asyncio.CancelledError):
            await sleeper
        await loop.sleep(200)
        return loop.time()

    loop = VirtualLoop()
    try:
        assert loop.run_until_complete(main()) == 201.0
    finally:
        loop.close()


def test_waiting_for_what_never_comes_is_a_stall_not_a_hang() -> None:
    async def main() -> None:
        await asyncio.get_running_loop().create_future()

    with pytest.raises(Stalled):
        run(main())


def test_an_exception_in_a_callback_goes_to_the_exception_handler_and_the_loop_goes_on() -> None:
    errors: list[BaseException] = []

    def boom() -> None:
        raise ValueError("boom")

    async def main() -> None:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, VirtualLoop)
        loop.set_exception_handler(lambda _, context: errors.append(context["exception"]))
        loop.call_soon(boom)
        loop.call_later(1, boom)
        loop.at(2, boom)
        await asyncio.sleep(3)

    run(main())
    assert [str(e) for e in errors] == ["boom"] * 3
