"""Exceptions with messages a user can act on.

Every error says what was wrong, what is allowed, and (for data) where we
looked and how to obtain what is missing.
"""


class MixreproError(Exception):
    """Base class of every error raised on purpose by mixrepro."""

    def __str__(self):  # KeyError and OSError subclasses would otherwise reformat the message
        return str(self.args[0]) if self.args else super().__str__()


class UnknownNameError(MixreproError, KeyError):
    """A name (method, dataset, model, budget...) that no registry knows."""

    def __init__(self, kind: str, name: str, known):
        self.kind, self.name, self.known = kind, name, sorted(known)
        super().__init__(f"unknown {kind} {name!r}; known {kind}s: {', '.join(self.known)}")


class InvalidParameterError(MixreproError, ValueError):
    """A parameter value outside what the method or protocol allows."""

    def __init__(self, name: str, value, allowed: str):
        self.name, self.value, self.allowed = name, value, allowed
        super().__init__(f"invalid value for {name}: {value!r}; allowed: {allowed}")


class DatasetMissingError(MixreproError, FileNotFoundError):
    """A dataset that is not where we looked."""

    def __init__(self, dataset: str, looked_in, how_to_get: str):
        self.dataset, self.looked_in, self.how_to_get = dataset, looked_in, how_to_get
        where = ", ".join(str(p) for p in (looked_in if isinstance(looked_in, (list, tuple)) else [looked_in]))
        super().__init__(f"dataset {dataset!r} not found; looked in: {where}. How to get it: {how_to_get}")


class ChecksumError(MixreproError):
    """An archive or file whose checksum or content counts are wrong (corrupt or a different copy)."""

    def __init__(self, path, expected: str, actual: str, what: str = "sha256"):
        self.path, self.expected, self.actual = path, expected, actual
        super().__init__(
            f"{path}: {what} mismatch (expected {expected}, got {actual}); "
            "the file is corrupt or is not the expected copy; delete it and obtain it again"
        )


class PretrainedWeightsMissingError(MixreproError, FileNotFoundError):
    """Pretrained weights that are not in torchvision's cache and could not be downloaded."""


class MissingRunError(MixreproError, LookupError):
    """A run that the store does not hold, and training was not allowed."""

    def __init__(self, config, looked_in, command: str):
        self.config, self.looked_in, self.command = config, looked_in, command
        super().__init__(
            f"no results for {config.method} on {config.dataset} (seed {config.seed}, key {config.key()}); "
            f"looked in {looked_in}. Train it with: {command}"
        )


class MissingWeightsError(MixreproError, FileNotFoundError):
    """An evaluation needs a run's final weights, and the checkpoint cache no longer has them."""

    def __init__(self, config, looked_in, command: str):
        self.config, self.looked_in, self.command = config, looked_in, command
        super().__init__(
            f"the final weights of run {config.key()} ({config.method} on {config.dataset}, seed {config.seed}) "
            f"are not in {looked_in}; evaluations need them. Retrain with: {command} --restart "
            "(on CPU the retrained weights are bit-identical)"
        )


class StaleRunError(MixreproError):
    """A stored run made by an older version of its method's code than the one installed."""

    def __init__(self, config, record, current_version: int, command: str):
        self.config, self.record = config, record
        super().__init__(
            f"the stored run {config.key()} ({config.method}, seed {config.seed}) was trained by version "
            f"{record.method_code_version} of the method's code; this is version {current_version}. "
            f"Retrain it with: {command}"
        )
