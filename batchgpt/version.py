"""batchgpt's version, in a module of its own: the modules that name it (the User-Agent, the HTML
page, the store's refusal of a newer format) import it without going through the package root,
whose lazy `run` and `validate` import the whole library."""

__version__ = "0.1.0"
