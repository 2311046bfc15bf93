"""The whole comparison: item text, encoder, reshapers, backbones, results table."""

from .methods import METHODS, build_table
from .plan import ComparisonPlan
from .runner import BACKBONES, run_comparison
from .text import encode_items, item_prompts

__all__ = ["BACKBONES", "METHODS", "ComparisonPlan", "build_table", "encode_items",
           "item_prompts", "run_comparison"]
