"""Stage ``adapter``: strict-json and eos-behaviour on the adapter's generations."""
