"""Source registry: URI scheme -> factory.

Factories are named as ``"module:function"`` strings and imported on first use,
so that listing the schemes (for ``--help``) never imports heavy optional
dependencies such as ``datasets``. A URI without a known scheme is a local
path: an archive when its name says so, otherwise a folder.

Other packages add source kinds through the Python entry-point group
``gandata.sources`` (name = scheme, value = ``"module:function"``); gantrain
registers ``gan`` that way, so gandata never imports gantrain. Entry points
are listed on first use and their modules imported only when a URI names
them. A URI whose scheme belongs to a known plugin that is not installed
fails with a message naming the package to install.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Callable

from gandata.config import SourceSpec
from gandata.errors import SourceError
from gandata.sources.base import Partition, Source, SourceContext

if TYPE_CHECKING:
    from importlib import metadata

__all__ = [
    "Partition", "Source", "SourceContext", "SCHEMES", "ENTRY_POINT_GROUP", "PLUGIN_PACKAGES",
    "open_source", "scheme_of", "register", "schemes",
]

SourceFactory = Callable[[str, SourceSpec, SourceContext], Source]

# scheme -> ("module:function", one-line help shown by `gandata build --help`)
SCHEMES: dict[str, tuple[str, str]] = {
    "synth": ("gandata.sources.shapes:open_shapes", "synth:shapes[?count=N&size=PX&seed=S&imbalance=R&classes=a,b] procedural shapes (the default)"),
    "folder": ("gandata.sources.folder:open_folder", "folder:PATH or just PATH: ImageFolder tree (class = first-level subfolder), or --labels CSV; PATH/train|val|test/CLASS/ keeps its splits (?layout=auto|classes|splits)"),
    "file": ("gandata.sources.folder:open_folder", "file:PATH: same as folder:PATH"),
    "zip": ("gandata.sources.archive:open_archive", "zip:FILE or FILE.zip: a zip archive, same label convention, read without extracting"),
    "tar": ("gandata.sources.archive:open_archive", "tar:FILE or FILE.tar[.gz|.bz2|.xz]/.tgz: a tar archive, same label convention"),
    "hf": ("gandata.sources.hf:open_hf", "hf:NAME[:CONFIG][@SPLIT][?streaming=1]: a HuggingFace dataset by Hub name (HF cache when offline), or a local dataset folder when NAME is a path (parquet/arrow files, imagefolder)"),
    "hf-disk": ("gandata.sources.hf:open_hf_disk", "hf-disk:PATH[@SPLIT]: the output of datasets' save_to_disk (Dataset or DatasetDict)"),
    "idx": ("gandata.sources.idx:open_idx", "idx:PATH: MNIST-style IDX images file (raw or .gz; labels file found beside it: images->labels, idx3->idx1)"),
    "cifar": ("gandata.sources.cifar:open_cifar", "cifar:DIR[?split=train|test|all&labels=fine|coarse]: CIFAR-10/100 binary version (python pickles read only through a restricted unpickler)"),
    "npz": ("gandata.sources.npz:open_npz", "npz:FILE: NumPy .npz (arrays 'images', optional 'labels', 'classes') or .npy images; NHWC or NCHW, uint8 or float in [0,1]"),
    "urls": ("gandata.sources.web.source:open_urls", "urls:FILE[?option=value&...]: download the image URLs of a txt/csv/tsv/jsonl/parquet list (.gz too; see docs/WEB.md)"),
    "crawl": ("gandata.sources.web.source:open_crawl", "crawl:URL[#option=value&...]: crawl pages from URL (same host) and download their images (see docs/WEB.md)"),
}

# The entry-point group other packages register source kinds under.
ENTRY_POINT_GROUP = "gandata.sources"

# Schemes provided by other packages: scheme -> (package, what it reads, how
# to install it). Only used for the error message when such a URI is given
# without the plugin. gantrain is not on PyPI on its own: it ships in the
# gandata distribution, so installing the project (with PyTorch) brings it.
PLUGIN_PACKAGES: dict[str, tuple[str, str, str]] = {
    "gan": ("gantrain", "samples of a trained gantrain generator",
            "install this project with `pip install -e .` in its checkout; gantrain ships with gandata"),
}

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")


def register(scheme: str, factory: str, help_text: str) -> None:
    """Register a source kind: ``factory`` is ``"module:function"``."""
    SCHEMES[scheme] = (factory, help_text)


_plugins_loaded = False


def _plugin_help(ep: metadata.EntryPoint) -> str:
    """Help text of a plugin source: the factory's ``help`` attribute, else
    the first line of its docstring. Importing the module is the price of a
    help text; a plugin whose import fails gets a generic line instead."""
    try:
        factory = ep.load()
    except Exception as exc:  # a broken plugin must not break gandata
        return f"{ep.name}:...: provided by {ep.value} (cannot be imported: {type(exc).__name__})"
    text = getattr(factory, "help", None) or (factory.__doc__ or "").strip().splitlines()[0:1]
    if isinstance(text, list):
        text = text[0] if text else ""
    return str(text) or f"{ep.name}:...: provided by {ep.value}"


def load_plugins() -> None:
    """Register the source kinds of installed plugins (entry-point group
    ``gandata.sources``), once. Built-in schemes are never overridden."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    # Imported here: importlib.metadata costs ~35 ms, paid by every worker
    # process that imports gandata.sources and never looks a plugin up.
    from importlib import metadata

    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name not in SCHEMES:
            SCHEMES[ep.name] = (ep.value, f"{ep.name}:... ({ep.value})")
            _plugin_entry_points[ep.name] = ep


_plugin_entry_points: dict[str, metadata.EntryPoint] = {}


def schemes() -> dict[str, tuple[str, str]]:
    """Every registered scheme with its help text, plugins included (their
    help text is read from the factory, which imports the plugin module)."""
    load_plugins()
    for name, ep in _plugin_entry_points.items():
        factory, _ = SCHEMES[name]
        SCHEMES[name] = (factory, _plugin_help(ep))
    _plugin_entry_points.clear()
    return dict(SCHEMES)


def scheme_of(uri: str) -> str:
    """The registered scheme a URI names, or 'folder'/'zip'/'tar' for a bare path.

    Raises SourceError for the scheme of a known plugin that is not installed
    (``gan:`` without gantrain), and for an unknown scheme (``synt:shapes``),
    naming the known ones, rather than reading the URI as a folder."""
    head, sep, rest = uri.partition(":")
    if sep and head in SCHEMES:
        return head
    if sep and head:
        load_plugins()
        if head in SCHEMES:
            return head
        if head in PLUGIN_PACKAGES:
            package, what, install = PLUGIN_PACKAGES[head]
            raise SourceError(
                f"source {uri}: the {head}: source kind ({what}) is provided by the {package} package, which is "
                f"not installed; {install}"
            )
        _refuse_unknown_scheme(uri, head, rest)
    lower = uri.lower().rstrip("/")
    if lower.endswith(".zip"):
        return "zip"
    if lower.endswith(ARCHIVE_SUFFIXES):
        return "tar"
    return "folder"


def _refuse_unknown_scheme(uri: str, head: str, rest: str) -> None:
    """Raise SourceError when ``uri`` names a scheme nobody registered.

    Left alone: fsspec URLs (``s3://...``: ``//`` after the colon), Windows
    drive letters (``C:``, one letter) and paths that exist as written."""
    import difflib
    import re
    from pathlib import Path

    if len(head) < 2 or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", head) or rest.startswith("//"):
        return
    if Path(uri).expanduser().exists():
        return
    known = sorted(set(SCHEMES) | set(PLUGIN_PACKAGES))
    close = difflib.get_close_matches(head, known, n=1)
    hint = f"did you mean {close[0]}:? " if close else ""
    raise SourceError(
        f"source {uri}: unknown source kind {head + ':'!r}; {hint}known kinds: "
        f"{', '.join(k + ':' for k in known)}, or a local path (gandata build --help lists them)"
    )


def _load_factory(scheme: str) -> SourceFactory:
    target, _ = SCHEMES[scheme]
    module_name, _, func_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        hint = f"; {PLUGIN_PACKAGES[scheme][2]}" if scheme in PLUGIN_PACKAGES else ""
        raise SourceError(f"source kind {scheme!r} needs a package that is not installed: {exc}{hint}") from None
    return getattr(module, func_name)


def open_source(spec: SourceSpec, ctx: SourceContext) -> Source:
    """Construct the source a spec names; raises SourceError for a bad URI."""
    from gandata.sources.provenance import ProvenanceSource

    scheme = scheme_of(spec.uri)
    if scheme in ("folder", "zip", "tar"):
        # An fsspec URL (s3://, gs://, ...) given as a folder or archive.
        from gandata.util.remote import is_remote

        prefix = scheme + ":"
        if is_remote(spec.uri[len(prefix):] if spec.uri.startswith(prefix) else spec.uri):
            from gandata.sources.remote import open_remote

            return ProvenanceSource(open_remote(spec.uri, spec, ctx), spec.license)
    return ProvenanceSource(_load_factory(scheme)(spec.uri, spec, ctx), spec.license)
