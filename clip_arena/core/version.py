from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("clip-arena")
except PackageNotFoundError:  # running from a plain checkout
    __version__ = "0.0.0+local"
