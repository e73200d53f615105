"""Many simultaneous requests for two adapters of one base: batched together, adapters mixed in a
batch, and every answer exactly the one its request gets alone."""

from __future__ import annotations

import asyncio

import openai

from tests.serving.releases import KEY

PROMPTS = [
    f"Question {i}: what should I check first on a {thing}?"
    for i, thing in enumerate(["fern", "bike chain", "cactus", "brake pad", "orchid", "tyre"] * 4)
]


def test_simultaneous_requests_for_two_adapters_are_batched_and_answered_exactly(server) -> None:
    jobs = [("alpha" if i % 2 else "beta", prompt) for i, prompt in enumerate(PROMPTS)]
    engine = server.state.pool.served["alpha"].engine
    assert engine is server.state.pool.served["beta"].engine  # one base loaded for both

    async def ask(client: openai.AsyncOpenAI, model: str, prompt: str, stream: bool) -> str:
        messages = [{"role": "user", "content": prompt}]
        if not stream:
            answer = await client.chat.completions.create(
                model=model, messages=messages, max_tokens=12, temperature=0
            )
            return answer.choices[0].message.content or ""
        chunks = await client.chat.completions.create(
            model=model, messages=messages, max_tokens=12, temperature=0, stream=True
        )
        return "".join(
            [chunk.choices[0].delta.content or "" async for chunk in chunks if chunk.choices]
        )

    async def run() -> tuple[list[str], list[str]]:
        client = openai.AsyncOpenAI(
            base_url=server.url + "/v1", api_key=KEY, max_retries=0, timeout=120
        )
        try:
            alone = [
                await ask(client, model, prompt, stream=False) for model, prompt in jobs
            ]  # one at a time
            before = (engine.batches, engine.batched)
            together = await asyncio.gather(
                *(
                    ask(client, model, prompt, stream=i % 3 == 0)
                    for i, (model, prompt) in enumerate(jobs)
                )
            )
            batches, batched = engine.batches - before[0], engine.batched - before[1]
            assert batched == len(jobs) and batches < len(jobs) / 2, (
                batches,
                batched,
            )  # requests did share batches
            return alone, list(together)
        finally:
            await client.close()

    alone, together = asyncio.run(run())
    assert together == alone
    assert len(set(alone)) > 2
