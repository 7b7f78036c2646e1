"""The shared readers of user input: text files, JSON/YAML, the config, datasets, tokenizers, cases, atomic writes."""
