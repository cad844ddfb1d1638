from hypothesis import given, strategies as st

from soundmind_data.text.template import clean_field, join_major_premise, parse_question, render_question

# Written out literally so that a change to the template cannot go unnoticed.
EXPECTED = (
    "Let's figure out the logical connection between these premises and the conclusion. You have two choices, "
    "'entailed' means the conclusion must be true based on the given premises, or 'not-entailed' means the "
    "conclusion can't be true based on the premises.\n\nHere's the setup:\n"
    'Major premise is "All cats are animals".\nMinor premise is "Is Tom a cat?".\nConclusion is "Tom is an animal".'
    "\n\nYour task is to decide is the conclusion 'entailed' or 'not-entailed' based on these premises"
)


def test_render_matches_soundmind_wording():
    assert render_question("All cats are animals. ", "Is Tom a cat?", " Tom is an animal.") == EXPECTED


def test_clean_field_keeps_inner_spacing_and_question_marks():
    assert clean_field(" the bones of an elephant  from the period. ") == "the bones of an elephant  from the period"
    assert clean_field("Which one belongs?") == "Which one belongs?"


def test_join_major_premise():
    assert join_major_premise(["The effect is real.", " Studies support it"]) == "The effect is real. Studies support it"
    assert join_major_premise([]) == ""
    assert join_major_premise(["", "  "]) == ""


text = st.text(st.characters(blacklist_characters='"\n\r', blacklist_categories=("Cs",)), max_size=40)


@given(text, text, text)
def test_parse_inverts_render(major, minor, conclusion):
    parsed = parse_question(render_question(major, minor, conclusion))
    assert parsed == (clean_field(major), clean_field(minor), clean_field(conclusion))


def test_parse_refuses_other_prompts():
    assert parse_question("Is this entailed?") is None
    assert parse_question(EXPECTED + " extra") is None
