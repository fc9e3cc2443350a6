"""Stage 1: files → cleaned ``Document`` → structure-aware ``Chunk`` records."""

from .chunker import chunk_document
from .clean import clean_text
from .language import detect_script, to_simplified
from .loaders import LoadError
from .pipeline import IngestResult, find_files, ingest_folder, ingest_paths, read_document
from .records import Chunk, Document, Skipped

__all__ = [
    "Chunk",
    "Document",
    "IngestResult",
    "LoadError",
    "Skipped",
    "chunk_document",
    "clean_text",
    "detect_script",
    "find_files",
    "ingest_folder",
    "ingest_paths",
    "read_document",
    "to_simplified",
]
