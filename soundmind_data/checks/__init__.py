"""The checks of `soundmind-data validate`, each under a stable name that reports, tests and scripts rely on.

Annotation checks run on every line (manifest.py); audio checks (audio.py) on every `question_audio` and
`answer_audio` when --audio is given; the ASR round trip (asr.py) when --asr is given. Thresholds: config.py.
"""

ANNOTATION_CHECKS = (
    "json",  # the line is a JSON object
    "schema",  # the item follows schemas/item.schema.json
    "unique_id",
    "answer_label",  # --strict: the answer's final verdict agrees with the label (the audit's check, made failing)
)
FILE_CHECKS = (
    "audio_present",  # the item has question audio, and answer audio when it has an answer
    "file_exists",
    "sha256",
    "decode",  # decodes to the last frame: a truncated or corrupt file fails here
    "sample_rate",
    "channels",
    "duration",
)
SIGNAL_CHECKS = ("finite", "clipping", "silence_ratio", "edge_silence", "loudness")
TEXT_CHECKS = ("speaking_rate",)
ASR_CHECKS = ("asr_per", "asr_wer")  # the phoneme error rate gate; a WER gate where one is set
ALL_CHECKS = ANNOTATION_CHECKS + FILE_CHECKS + SIGNAL_CHECKS + TEXT_CHECKS + ASR_CHECKS
