"""Exceptions raised by the indexing library; callers turn them into messages."""


class FashionIndexError(Exception):
    """Base class: every error the library raises on purpose."""


class ImageError(FashionIndexError):
    """An image could not be used."""


class UnreadableImageError(ImageError):
    """Empty, truncated, corrupt or non-image bytes."""


class ImageTooLargeError(ImageError):
    """More pixels (or bytes) than the loader accepts: a decompression bomb guard."""


class IndexFormatError(FashionIndexError):
    """An index directory is missing, corrupt, tampered with or of an unknown format."""


class IndexExistsError(FashionIndexError):
    """Refusing to overwrite a complete index."""


class ExtractorMismatchError(FashionIndexError):
    """The extractor at hand is not the one that built the index."""


class WeightsError(FashionIndexError):
    """Model weights could not be found, downloaded or read."""


class BuildError(FashionIndexError):
    """A build, add or remove could not proceed."""


class FeedError(FashionIndexError):
    """A product feed could not be read: malformed, unsafe, too large, or missing what a product needs."""


class DownloadError(ImageError):
    """An image URL gave no usable image: refused, unreachable, too large, or not an image."""


class IndexBusyError(FashionIndexError):
    """Another writer holds the index, and the caller chose not to wait for it."""


class StoreUnavailableError(FashionIndexError):
    """The catalogue's store (a Milvus server) did not answer, or refused: it may be restarting."""
