"""Chat engines: a GGUF through llama-cpp-python, or a transformers model in memory (no Qt here)."""

from .session import ChatSession, ChatSettings

__all__ = ["ChatSession", "ChatSettings", "LlamaCppChat", "LoraSwitch", "TransformersChat"]


def __getattr__(name: str):
    # Lazy: importing the settings must not pull in llama_cpp or torch.
    if name == "LlamaCppChat":
        from .llama_cpp_chat import LlamaCppChat

        return LlamaCppChat
    if name == "LoraSwitch":
        from .lora_switch import LoraSwitch

        return LoraSwitch
    if name == "TransformersChat":
        from .transformers_chat import TransformersChat

        return TransformersChat
    raise AttributeError(name)
