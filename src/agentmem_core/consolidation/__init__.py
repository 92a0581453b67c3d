"""Consolidation: summaries of many memories, atomic facts with supersession, and the runner.

The store methods (``consolidate``, ``consolidate_facts``) take a :class:`Summarizer` or a
:class:`FactExtractor`, or any model a provider wraps into one (:func:`summarizer_from`,
:func:`extractor_from`: a LangChain chat model, a LlamaIndex LLM, a CrewAI LLM, a chat function);
:class:`OpenAISummarizer` and :class:`OpenAIFactExtractor` speak the OpenAI API directly. The prompts
live, versioned, in :mod:`agentmem_core.consolidation.prompts`. :class:`ConsolidationRunner` (and its
asyncio twin) runs a consolidation job per scope in the background, one process at a time per scope.

Nothing here imports a framework, ``openai`` or ``httpx`` until a model is called.
"""

from agentmem_core.consolidation._types import ExtractedFact, FactExtractor, KnownFact, Numbered, Summarizer
from agentmem_core.consolidation.prompts import PROMPT_VERSION
from agentmem_core.consolidation.providers import (
    DEFAULT_MAX_INPUT_CHARS,
    ChatModelFactExtractor,
    ChatModelSummarizer,
    OpenAIFactExtractor,
    OpenAISummarizer,
    extractor_from,
    parse_facts,
    summarizer_from,
)
from agentmem_core.consolidation.runner import AsyncConsolidationRunner, ConsolidationRunner, RunnerStats

__all__ = [
    "DEFAULT_MAX_INPUT_CHARS",
    "PROMPT_VERSION",
    "AsyncConsolidationRunner",
    "ChatModelFactExtractor",
    "ChatModelSummarizer",
    "ConsolidationRunner",
    "ExtractedFact",
    "FactExtractor",
    "KnownFact",
    "Numbered",
    "OpenAIFactExtractor",
    "OpenAISummarizer",
    "RunnerStats",
    "Summarizer",
    "extractor_from",
    "parse_facts",
    "summarizer_from",
]
