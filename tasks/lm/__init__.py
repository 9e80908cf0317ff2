"""The language model as the stages use it: build or load it, render chats, generate.

- :mod:`~tasks.lm.modeling`: the tiny from-config model and tokenizer, or a hub/local model;
- :mod:`~tasks.lm.generate`: batched generation through vLLM (child process) or transformers.
"""
