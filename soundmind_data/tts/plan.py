"""The speaker plan: which voice speaks each item.

Within every split x label group, items are ordered by a seeded hash of their id and dealt to the split's voices in
turn, the dealing going on from group to group: each item's voice follows from its id, the groups' sizes and the
seed (never from the manifest's order or the machine), and the voices' item counts differ by at most one within
every group, every split and the corpus. With test voices,
the `test` split is spoken only by them and every other split only by the others, so a model can be evaluated on
speakers it never heard in training. Question and answer of an item share its voice.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from typing import Hashable, Iterable

from soundmind_data.corpus import split_sort_key
from soundmind_data.errors import UsageError
from soundmind_data.tts.voices import Voice

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
        groups: dict[tuple[str, object], list[tuple[int, Hashable]]] = defaultdict(list)
        for key, item_id, split, label in items:
            groups[(split, label)].append((_rank(self.seed, item_id), key))
        plan: dict[Hashable, Voice] = {}
        # Dealing goes on from one group to the next (splits in their usual order, then labels), so the counts also
        # differ by at most one within every split and over the corpus, not only within each group.
        dealt: dict[tuple[str, ...], int] = {}  # per pool of voices: how many items it has dealt (from a seeded start)
        for split, label in sorted(groups, key=lambda group: (split_sort_key(group[0]), str(group[1]))):
            pool = self.pool(split)
            names = tuple(voice.name for voice in pool)
            position = dealt.get(names, _rank(self.seed) % len(pool))
            for _, key in sorted(groups[(split, label)], key=lambda member: member[0]):
                plan[key] = pool[position % len(pool)]
                position += 1
            dealt[names] = position
        return plan
