"""``sftgate demo`` and the tiny offline model and tokenizer it builds."""
