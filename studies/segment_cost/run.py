"""What version 7's segments cost a file: its bytes against the same latents, weights and tables coded as
one range-coder stream without an index (version 6's layout). Exact for files whose levels are all whole
(every Kodak-sized photo); a file with chunked levels is reported with its index and segment count only.

    python studies/segment_cost/run.py FILE.shc [FILE.shc ...] [--json]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from shc.format import constants as C
from shc.format.container import read_file
from shc.format.entropy import encode_latents, file_latents


def segment_cost(data: bytes) -> dict:
    """Segments, index bytes, and the bytes of the same file in one stream (None when levels are chunked)."""
    parsed = read_file(data)
    header = parsed.header
    layout = header.layout
    row = {"bytes": len(data), "segments": len(layout.segments),
           "index_bytes": C.SEGMENT_INDEX_ENTRY_BYTES * len(layout.segments),
           "chunked_levels": sum(level.chunking is not None for level in layout.levels)}
    if row["chunked_levels"] or not header.range_coded:
        row["one_stream_bytes"] = None
        return row
    one = encode_latents(replace(header, version=6), parsed.tables, file_latents(parsed), parsed.context)
    latent_bytes = sum(values.nbytes for values in parsed.latent_segments)
    row["one_stream_bytes"] = len(data) - row["index_bytes"] - latent_bytes + one[0].nbytes
    row["cost_pct"] = round(100 * (len(data) / row["one_stream_bytes"] - 1), 3)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(prog="python studies/segment_cost/run.py", description=__doc__.splitlines()[0])
    parser.add_argument("files", type=Path, nargs="+")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = []
    for path in args.files:
        row = {"file": str(path), **segment_cost(path.read_bytes())}
        rows.append(row)
        print(json.dumps(row) if args.json else
              f"{path.name}: {row['bytes']} B, {row['segments']} segments, one stream {row['one_stream_bytes']} B"
              + (f" ({row['cost_pct']:+.3f} %)" if row["one_stream_bytes"] else ""))
    costs = [r["cost_pct"] for r in rows if r.get("cost_pct") is not None]
    if costs and not args.json:
        print(f"mean {sum(costs) / len(costs):+.3f} %, max {max(costs):+.3f} % over {len(costs)} files")


if __name__ == "__main__":
    main()
