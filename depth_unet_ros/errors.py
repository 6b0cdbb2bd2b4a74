"""Typed errors whose messages say what went wrong and what to do; only ``main()`` exits."""


class DepthUnetError(Exception):
    """Base class of every error this project raises on purpose."""


class ConfigError(DepthUnetError):
    """A configuration file or override is invalid (unknown key, bad value)."""


class DatasetError(DepthUnetError):
    """A dataset file or folder is missing, malformed, or inconsistent."""


class ModelLoadError(DepthUnetError):
    """A model file is missing, not a model, or lacks the metadata the runtime needs."""


class ImageFormatError(DepthUnetError):
    """An image has the wrong dtype, shape, channel count, or encoding."""


class BackendClosedError(DepthUnetError):
    """A backend was asked to infer after ``close()`` released its model."""


class MalformedMessageError(DepthUnetError):
    """A serialized message cannot be read as its topic's type (empty, truncated, corrupt)."""
