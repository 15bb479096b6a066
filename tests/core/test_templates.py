"""Chat-template rendering and the assistant-only mask, on the embedded model's real tokenizer."""

from tunesmith.core.data import apply_template, render_example
from tunesmith.core.data.templates import NAMED_TEMPLATES

CHAT = {
    "messages": [
        {"role": "user", "content": "What is your name?"},
        {"role": "assistant", "content": "I am Quill."},
        {"role": "user", "content": "Again?"},
        {"role": "assistant", "content": "Quill, matey."},
    ]
}


def trained_text(rendered):
    return "".join(text for text, trained in rendered.segments if trained)


def test_rendering_uses_the_models_chat_template(demo_tokenizer):
    rendered = render_example(CHAT, demo_tokenizer, max_length=512)
    assert rendered.text == demo_tokenizer.apply_chat_template(CHAT["messages"], tokenize=False)
    assert rendered.text.startswith("<|im_start|>system\n")  # SmolLM2 adds its default system prompt
    assert rendered.input_ids == demo_tokenizer(rendered.text, add_special_tokens=False)["input_ids"]


def test_only_assistant_turns_and_their_end_tokens_are_trained(demo_tokenizer):
    rendered = render_example(CHAT, demo_tokenizer, max_length=512)
    assert trained_text(rendered) == "I am Quill.<|im_end|>\nQuill, matey.<|im_end|>\n"
    im_end = demo_tokenizer.convert_tokens_to_ids("<|im_end|>")
    trained_ids = [t for t, keep in zip(rendered.input_ids, rendered.trained, strict=True) if keep]
    assert trained_ids.count(im_end) == 2  # the model learns to stop after each answer
    assert rendered.labels.count(-100) == len(rendered.input_ids) - sum(rendered.trained)
    assert "".join(text for text, _ in rendered.segments) == rendered.text


def test_mask_can_be_switched_off(demo_tokenizer):
    rendered = render_example(CHAT, demo_tokenizer, max_length=512, assistant_only_loss=False)
    assert all(rendered.trained)


def test_plain_text_is_all_trained_and_ends_with_eos(demo_tokenizer):
    rendered = render_example({"text": "Hello world"}, demo_tokenizer, max_length=512)
    assert rendered.text == "Hello world" + demo_tokenizer.eos_token
    assert all(rendered.trained)


def test_truncation_is_counted(demo_tokenizer):
    rendered = render_example(CHAT, demo_tokenizer, max_length=20)
    assert rendered.truncated and rendered.num_tokens > 20
    assert len(rendered.input_ids) == len(rendered.trained) == 20


def test_named_template_for_a_model_without_one(demo_tokenizer):
    tokenizer = demo_tokenizer.__class__.from_pretrained(demo_tokenizer.name_or_path)
    tokenizer.chat_template = None
    apply_template(tokenizer, None)
    assert tokenizer.chat_template == NAMED_TEMPLATES["alpaca"]
    rendered = render_example(CHAT, tokenizer, max_length=512)
    assert (
        trained_text(rendered)
        == f"I am Quill.{tokenizer.eos_token}\n\nQuill, matey.{tokenizer.eos_token}\n\n"
    )
    apply_template(tokenizer, "chatml")
    assert render_example(CHAT, tokenizer, 512).text.startswith("<|im_start|>user\nWhat is your name?")
