"""Stage ``tokenizer``: prompt-alignment and eos, on the one rendering of prompts and labels."""
