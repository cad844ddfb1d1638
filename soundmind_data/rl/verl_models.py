"""verl's model hook: `actor_rollout_ref.model.external_lib=soundmind_data.rl.verl_models` (verl 0.9.1 imports it in
every worker before it builds the actor) makes stock verl build SoundMind's audio policies with their language-model
head.

verl picks the class that loads the actor from the checkpoint's config (`verl.utils.model.get_hf_auto_model_class`):
`AutoModelForImageTextToText` when transformers maps the config there, else a class named like the architecture's
`...ForCausalLM`, else `AutoModel`, which has no language-model head. transformers 5 maps a Qwen2.5-Omni *thinker*
checkpoint there already (tiny-omni's folder, or a thinker saved alone), but not a whole Qwen2.5-Omni checkpoint as
the Hub holds Qwen/Qwen2.5-Omni-7B (no AutoModel either: verl cannot build it), nor Qwen2-Audio (AutoModel builds its
encoder and decoder without the head). This module registers both with AutoModelForImageTextToText: the whole Omni
checkpoint loads its thinker (the talker stays on disk), Qwen2-Audio its generating class. Importing it needs
transformers only.
"""

from __future__ import annotations

from transformers import (AutoModelForImageTextToText, Qwen2_5OmniConfig, Qwen2_5OmniThinkerForConditionalGeneration,
                          Qwen2AudioConfig, Qwen2AudioForConditionalGeneration)


class Qwen2_5OmniThinkerOfWholeCheckpoint(Qwen2_5OmniThinkerForConditionalGeneration):
    """What AutoModelForImageTextToText builds for a whole Qwen2.5-Omni config: its thinker, loaded by the thinker
    class itself (which takes the `thinker.` weights out of the whole checkpoint) from the config's thinker part."""

    config_class = Qwen2_5OmniConfig  # the key it is registered under

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, config=None, **kwargs):
        if isinstance(config, Qwen2_5OmniConfig):
            config = config.thinker_config
        return Qwen2_5OmniThinkerForConditionalGeneration.from_pretrained(pretrained_model_name_or_path, *args,
                                                                         config=config, **kwargs)


AutoModelForImageTextToText.register(Qwen2_5OmniConfig, Qwen2_5OmniThinkerOfWholeCheckpoint, exist_ok=True)
AutoModelForImageTextToText.register(Qwen2AudioConfig, Qwen2AudioForConditionalGeneration, exist_ok=True)
