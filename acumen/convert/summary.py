"""What a conversion reports when it ends: :class:`ConversionSummary`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from acumen.format.manifest import Manifest

REPORT_FILE = "convert-report.json"


@dataclass
class ConversionSummary:
    output: Path
    manifest: Manifest
    samples: int
    skipped: list[dict[str, Any]]
    payload_bytes: int
    source_bytes: int
    seconds: float
    resumed_parts: int
    parts: int = 0  # parts in the dataset (0: finished by an earlier run, not counted)
    part_size: int = 0  # items per part (the last part may have fewer)
    workers: int = 0  # processes that wrote parts in this run (0: all were done already)

    @property
    def ratio(self) -> float:
        return self.source_bytes / self.payload_bytes if self.payload_bytes else 1.0

    def __str__(self) -> str:
        text = (
            f"{self.output}: {self.samples:,} samples, {self.payload_bytes:,} bytes in "
            f"{len(self.manifest.chunks)} chunk files (arrays {self.source_bytes:,} bytes, "
            f"ratio {self.ratio:.2f}) in {self.seconds:.1f} s"
        )
        if self.parts:
            text += f"; {self.parts} part{'s' if self.parts != 1 else ''} of up to "
            text += f"{self.part_size:,} items"
            if self.workers:
                plural = "es" if self.workers != 1 else ""
                text += f", written by {self.workers} worker process{plural}"
        if self.resumed_parts:
            text += f"; {self.resumed_parts} part(s) were done already"
        if self.skipped:
            text += f"; {len(self.skipped)} item(s) skipped, listed in {self.output / REPORT_FILE}"
        return text
