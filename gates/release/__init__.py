"""Stage ``release``: the release gate."""
