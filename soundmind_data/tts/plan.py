"""The speaker plan: which voice speaks each item.

Each item prefers a place in the list of voices that its id and the seed pick (a seeded hash, never Python's salted
hash() nor the manifest's order). Within every split x label group the voices' item counts must differ by at most one, so a voice that more
items prefer than its share gives up the ones that hold to it least (a second seeded hash of their id) to the voices
short of their share, each going to the one of those it ranks first. Adding or dropping an item therefore moves at
most a couple of others: a corpus curated again, or grown by `add`, keeps almost every voice, and the synthesis cache
(keyed on the voice) keeps almost every file. With test voices, the `test` split is spoken only by them and every
other split only by the others, so a model can be evaluated on speakers it never heard in training. Question and
answer of an item share its voice.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from typing import Hashable, Iterable

from soundmind_data.core.errors import UsageError
from soundmind_data.tts.voices import Voice, speaker

TEST_SPLIT = "test"


def _rank(seed: int, *parts: object) -> int:
    """A seeded hash, stable across runs and machines (not Python's salted hash())."""
    text = "\x1f".join(str(part) for part in (seed, *parts))
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "big")


@dataclass(frozen=True)
class SpeakerPlan:
    voices: tuple[Voice, ...]  # every voice of the plan, test voices included
    test_voices: tuple[Voice, ...] = ()
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.voices:
            raise UsageError("--voices: no voice given")
        if self.test_voices and not self.training_voices():
            raise UsageError("--test-voices: every voice is held for the test split; name more --voices")
        trained = {speaker(voice): voice.name for voice in self.training_voices()}
        for voice in self.test_voices:
            if speaker(voice) in trained:
                raise UsageError(f"--test-voices: {voice.name} is {trained[speaker(voice)]} under another name, which "
                                 "the other splits hear")

    def training_voices(self) -> tuple[Voice, ...]:
        held = {voice.name for voice in self.test_voices}
        return tuple(voice for voice in self.voices if voice.name not in held)

    def pool(self, split: str) -> tuple[Voice, ...]:
        """The voices that may speak items of `split`."""
        if not self.test_voices:
            return self.voices
        return self.test_voices if split == TEST_SPLIT else self.training_voices()

    def assign(self, items: Iterable[tuple[Hashable, str, str, object]]) -> dict[Hashable, Voice]:
        """A voice for each (key, id, split, label); the key is the caller's (a line number)."""
        groups: dict[tuple[str, object], list[tuple[Hashable, str]]] = defaultdict(list)
        for key, item_id, split, label in items:
            groups[(split, label)].append((key, item_id))
        plan: dict[Hashable, Voice] = {}
        for (split, label), members in groups.items():
            pool = self.pool(split)
            for key, index in self._balanced(members, pool, (split, label)).items():
                plan[key] = pool[index]
        return plan

    def _balanced(self, members: list[tuple[Hashable, str]], pool: tuple[Voice, ...],
                  group: tuple[str, object]) -> dict[Hashable, int]:
        """Each member's voice (an index into `pool`): its preferred one, moved only as far as balance needs."""
        # Preferences are for places in the pool, not names: a voice replaced by another takes over its items as they
        # are, and only they are spoken again.
        def preference(item_id: str) -> list[int]:  # the places in the order this item likes them
            return sorted(range(len(pool)), key=lambda index: _rank(self.seed, item_id, index))

        chosen = {key: preference(item_id)[0] for key, item_id in members}
        counts = [0] * len(pool)
        for index in chosen.values():
            counts[index] += 1
        share, extra = divmod(len(members), len(pool))
        # the voices most items prefer keep one more than the share (ties broken by a seeded rank of the voice)
        fuller = sorted(range(len(pool)), key=lambda index: (-counts[index], _rank(self.seed, *group, index)))
        target = {index: share + (rank < extra) for rank, index in enumerate(fuller)}
        hold = {key: _rank(self.seed, "hold", item_id) for key, item_id in members}
        holders: dict[int, list[Hashable]] = defaultdict(list)
        for key, index in chosen.items():
            holders[index].append(key)
        released = []
        for index, keys in holders.items():
            released += sorted(keys, key=lambda key: hold[key])[target[index]:]
            counts[index] = min(counts[index], target[index])
        ids = dict(members)
        for key in sorted(released, key=lambda key: hold[key]):
            index = next(index for index in preference(ids[key]) if counts[index] < target[index])
            chosen[key] = index
            counts[index] += 1
        return chosen
