"""Qwen2.5-Omni's thinker as a policy that hears the question, and `tiny-omni`, which runs that path on a CPU.

One path for every Omni checkpoint: `load_processor` and the thinker class's `from_pretrained` read a folder (a Hub
snapshot of Qwen/Qwen2.5-Omni-7B, a local copy, or tiny-omni's), and the trainer (rl.policies.HFPolicy) renders each
prompt with the processor's chat template, gives the processor the question's waveform, which it turns into log-mel
features and one `<|AUDIO|>` placeholder token per 40 ms, and gives the thinker both: its audio tower encodes the
features into those tokens' embeddings. Only where the folder comes from differs between a 7B on a GPU and tiny-omni.

The video processor: transformers 5 builds Qwen2_5OmniProcessor with one, and its video processors need torchvision,
which a CPU install of this project does not have (torch's CPU build comes alone, and the torchvision wheels on PyPI
do not load with it). Training feeds audio and text, never video, so `AudioOnlyVideoProcessor` stands in for it:
`OmniAudioProcessor` is Qwen2_5OmniProcessor accepting that stand-in, and nothing else of the class changes.

tiny-omni: a random Qwen2.5-Omni thinker of some 380,000 parameters (text model and audio encoder of the config's
`tiny_model` size, 2 layers of width 64 by default, and the 1-layer vision tower the class requires) with a real
processor: a word-level tokenizer trained on the run's prompts and answers with Qwen2.5-Omni's special tokens and
chat template, Whisper's feature extractor as Qwen2.5-Omni configures it (128 mel bins, 16 kHz, 30 s windows) and
Qwen2-VL's image processor. It is built on first use into the user cache (`usercache.cache_root()/models/`), keyed by
everything it is made of (tokenizer, size, seed, transformers version), so the same data and settings load the same
folder. As for the named models (llm.bundled), the folder is built aside and moved in under a file lock, and the
record of each file's size and sha256 taken when it was built is checked at each load: a damaged file is built again,
once, and one still damaged right after is a one-line error.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Iterable

import torch
import transformers
from transformers.video_processing_utils import VideoProcessorMixin

from soundmind_data.core.usercache import built_folder, cache_root
from soundmind_data.rl.tiny import TINY_SIZE, word_level

OMNI_MODEL_TYPES = ("qwen2_5_omni", "qwen2_5_omni_thinker")  # a whole Omni checkpoint, or its thinker alone

# Qwen2.5-Omni's special tokens under the names its tokenizer config gives them: the processor reads them by name.
NAMED_TOKENS = {"audio_token": "<|AUDIO|>", "audio_bos_token": "<|audio_bos|>", "audio_eos_token": "<|audio_eos|>",
                "image_token": "<|IMAGE|>", "video_token": "<|VIDEO|>", "vision_bos_token": "<|vision_bos|>",
                "vision_eos_token": "<|vision_eos|>"}
PAD, IM_START, EOS = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
UNK = "<unk>"  # Qwen's byte-level BPE needs none; a word-level tokenizer does
SPECIAL_TOKENS = [PAD, IM_START, EOS, *NAMED_TOKENS.values(), UNK]
# Qwen2.5-Omni's chat template, as its processor ships it: the default system turn, and an audio part becomes
# <|audio_bos|><|AUDIO|><|audio_eos|>, the processor then repeating <|AUDIO|> once per 40 ms of the waveform.
CHAT_TEMPLATE = (
    "{% set audio_count = namespace(value=0) %}{% set image_count = namespace(value=0) %}"
    "{% set video_count = namespace(value=0) %}{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}"
    "{{ message['content'] }}<|im_end|>\n{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}Picture {{ image_count.value }}: "
    "{% endif %}<|vision_bos|><|IMAGE|><|vision_eos|>"
    "{% elif content['type'] == 'audio' or 'audio' in content or 'audio_url' in content %}"
    "{% set audio_count.value = audio_count.value + 1 %}{% if add_audio_id %}Audio {{ audio_count.value }}: "
    "{% endif %}<|audio_bos|><|AUDIO|><|audio_eos|>"
    "{% elif content['type'] == 'video' or 'video' in content %}{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}<|vision_bos|><|VIDEO|><|vision_eos|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
TEMPLATE_WORDS = "system user assistant You are a helpful assistant."  # what the template writes besides tokens

RECORD = "soundmind-tiny-omni.json"  # written last into a built folder: what it was built from, and its files
BUILD = 1  # bump when `_save` makes something else from the same inputs: older folders are then built again


class AudioOnlyVideoProcessor(VideoProcessorMixin):
    """Stands in for Qwen2.5-Omni's video processor, which needs torchvision: training never feeds video."""

    def preprocess(self, videos: Any, **kwargs: Any) -> Any:
        raise ValueError("this Qwen2.5-Omni processor takes audio and text, not video")


class OmniAudioProcessor(transformers.Qwen2_5OmniProcessor):
    """Qwen2_5OmniProcessor with AudioOnlyVideoProcessor accepted in its video slot; otherwise the class itself."""

    def check_argument_for_proper_class(self, argument_name: str, argument: Any):
        if argument_name == "video_processor" and isinstance(argument, AudioOnlyVideoProcessor):
            return AudioOnlyVideoProcessor
        return super().check_argument_for_proper_class(argument_name, argument)


def is_omni(source: str | Path) -> bool:
    """Whether the checkpoint at `source` (a folder or a Hub id) is Qwen2.5-Omni, whole or its thinker alone."""
    return transformers.AutoConfig.from_pretrained(source).model_type in OMNI_MODEL_TYPES


def load_processor(source: str | Path) -> OmniAudioProcessor:
    """The processor of the Omni checkpoint at `source`: tokenizer, feature extractor and image processor as saved
    there, the video processor stood in for."""
    return OmniAudioProcessor.from_pretrained(source, video_processor=AudioOnlyVideoProcessor())


def load_thinker(source: str | Path, *, dtype: torch.dtype):
    """The thinker (the text-generating half) of the Omni checkpoint at `source`: transformers takes its weights out
    of a whole Omni checkpoint (thinker, talker, token2wav) or reads a thinker saved alone."""
    return transformers.Qwen2_5OmniThinkerForConditionalGeneration.from_pretrained(source, dtype=dtype)


# ----------------------------------------------------------------------------------------------------- tiny-omni
def tiny_folder(texts: Iterable[str], *, seed: int, size: dict[str, int]) -> Path:
    """The folder of tiny-omni for a run whose prompts and answers are `texts`, built on first use.

    A UsageError when the cache cannot be written; a DataError when the folder just built does not match its record.
    """
    tokenizer = word_level([TEMPLATE_WORDS, *texts], SPECIAL_TOKENS, unk=UNK)
    spec = {"build": BUILD, "seed": seed, "size": {**TINY_SIZE, **size}, "transformers": transformers.__version__,
            "tokenizer": hashlib.sha256(tokenizer.to_str().encode()).hexdigest()}
    key = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()
    return built_folder(cache_root() / "models" / f"tiny-omni-{key[:16]}", "tiny-omni", RECORD, {"key": key, **spec},
                        lambda staging: _save(tokenizer, spec, staging))


def _save(tokenizer, spec: dict[str, Any], folder: Path) -> None:
    """Save tiny-omni's processor and thinker into `folder`."""
    processor = _processor(tokenizer)
    _thinker(processor.tokenizer, seed=spec["seed"], **spec["size"]).save_pretrained(folder)
    processor.save_pretrained(folder)


def _processor(tokenizer) -> OmniAudioProcessor:
    wrapped = transformers.PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token=PAD, eos_token=EOS,
                                                   unk_token=UNK, extra_special_tokens=NAMED_TOKENS)
    return OmniAudioProcessor(image_processor=transformers.Qwen2VLImageProcessorPil(),
                              video_processor=AudioOnlyVideoProcessor(),
                              feature_extractor=transformers.WhisperFeatureExtractor(feature_size=128),
                              tokenizer=wrapped, chat_template=CHAT_TEMPLATE)


def _thinker(tokenizer, *, seed: int, hidden_size: int, layers: int, heads: int):
    """A Qwen2.5-Omni thinker with seeded random weights, its special token ids those of `tokenizer`."""
    head_half = hidden_size // heads // 2
    temporal = head_half // 4  # multimodal rotary sections split each head's half as Qwen2.5-Omni does (16, 24, 24)
    height = (head_half - temporal) // 2
    rope = {"rope_type": "default", "rope_theta": 1_000_000.0,
            "mrope_section": [temporal, height, head_half - temporal - height]}
    ids = tokenizer.convert_tokens_to_ids
    config = transformers.Qwen2_5OmniThinkerConfig(
        audio_config={"num_mel_bins": 128, "encoder_layers": layers, "encoder_attention_heads": heads,
                      "encoder_ffn_dim": hidden_size * 2, "d_model": hidden_size, "output_dim": hidden_size},
        vision_config={"depth": 1, "hidden_size": hidden_size, "intermediate_size": hidden_size * 2,
                       "num_heads": heads, "out_hidden_size": hidden_size, "fullatt_block_indexes": [0]},
        text_config={"vocab_size": len(tokenizer), "hidden_size": hidden_size, "intermediate_size": hidden_size * 2,
                     "num_hidden_layers": layers, "num_attention_heads": heads, "num_key_value_heads": heads,
                     "rope_parameters": rope, "pad_token_id": ids(PAD), "eos_token_id": ids(EOS)},
        audio_token_index=ids(NAMED_TOKENS["audio_token"]), image_token_index=ids(NAMED_TOKENS["image_token"]),
        video_token_index=ids(NAMED_TOKENS["video_token"]),
        audio_start_token_id=ids(NAMED_TOKENS["audio_bos_token"]),
        audio_end_token_id=ids(NAMED_TOKENS["audio_eos_token"]), user_token_id=ids("user"),
        # not declared by the config class, read by the thinker's rotary positions (Qwen2.5-Omni's config has them)
        vision_start_token_id=ids(NAMED_TOKENS["vision_bos_token"]),
        vision_end_token_id=ids(NAMED_TOKENS["vision_eos_token"]),
    )
    torch.manual_seed(seed)
    model = transformers.Qwen2_5OmniThinkerForConditionalGeneration(config)
    model.generation_config.pad_token_id, model.generation_config.eos_token_id = ids(PAD), ids(EOS)
    return model
