"""Fuzz harness for the ``.shc`` reader and the normative decoder (numpy and constriction only, never torch).

Usage::

    python -m shc.tools.fuzz [--cases N] [--seed S] [--time-limit SECONDS] [--sweep-boundaries] [FILES...]

Each case takes one seed file, mutates it and runs :func:`shc.format.decoder.decode_image` on the result,
then reads the same bytes with :class:`shc.format.reader.ShcReader` (:func:`check_reader`; ``--no-reader``
skips it): a file that decodes must open whole and render the same pixels in full and in a region (from
only the segments the region needs), and render from its first level; a file cut short in its latents must
render its complete levels (or refuse with a ShcFormatError); any other refused file must be refused by
the reader too. The outcome is one of:

* ``error``: a clean :class:`~shc.format.errors.ShcFormatError` with a non-empty message;
* ``decoded``: a uint8 ``(height, width, channels)`` image whose size and channels match the file's header,
  with the file's ICC profile and EXIF block (None or non-empty bytes);
* ``failure``: anything else: another exception type (from the decoder or the reader), a wrong result, a
  reader that disagrees with the decoder, a case slower than ``--case-seconds``, or one whose peak traced
  allocation exceeds ``--memory-limit-mb``.

The run exits non-zero if there was any failure, or if an unmutated seed did not decode.

Most mutators re-fix the CRC32 of the section they touch (and of a latent segment, in the version-7 index), so
the mutation reaches the parser and the range decoder instead of stopping at the checksum. Seeds are the files
given on the command line, or by default the seed files shipped inside this package
(``shc/tools/seeds/*.shc``, package data, so that any install finds them: byte-identical copies of the golden
files ``tests/data/*.shc``, written together with them by ``tests/data/make_golden.py`` and checked equal by
``tests/test_fuzz.py``) plus six small synthetic files (:mod:`~shc.tools.fuzz.seeds`): one with a hashed
level, two latent dimensions, two groups and a one-symbol table; one with a 4096-symbol table, no hidden layer
and weights up to ``WEIGHT_CODE_MAX`` (the golden files only have dense levels and small tables); one with
float16 latents (no entropy coding); one RGBA file (HEAD ``channels`` = 4) with a META section; one with a
context network (SPEC §5a) over dense levels between hashed ones; one with chunked levels (SPEC §4a: a dense
level in 4 chunks, a hashed one in 6, eleven latent segments, :data:`CHUNKED_CELLS`). Files of versions 2-6
given on the command line are mutated in their own layout (versions 2-3: u32 level cells, int8 weights, count
tables; 4-5: no context network; 2-6: LATN holds the latents, no segments); the default seeds are all version
7 (exp-Golomb weights and table histograms, SPEC §3, §5, whose mutators decode the bit streams, change the
integers and re-pack them; the context block at the start of TABL, whose mutator does the same with the
network's integers and level ranges, or adds a network to a file without one; the optional META section, whose
mutator re-frames its entries, and inserts or removes the section; the LATN segment index and the segments
after it, SPEC §6, whose mutators change lengths, CRCs and the number of entries, move the boundaries between
segments, change bytes inside one segment, and cut the file at every boundary). Case ``i`` of seed ``S`` is
reproducible on its own: its random generator is ``numpy.random.default_rng([S, i])``, and ``--case i`` reruns
just that case. ``--sweep-truncations`` decodes every truncation of every seed, ``--sweep-boundaries`` the
cuts at every section and segment boundary and one byte either side (:func:`truncation_points`).

``--max-pixels`` defaults to 2**20 rather than the library's default: a header mutation may legitimately
ask for a large image, and a 1-megapixel decode of the golden files already takes about 3 s on 2 cores.

Modules, by what they do:

* :mod:`~shc.tools.fuzz.syntax` - a file taken apart into sections, segments, fields and codes, and put back;
* :mod:`~shc.tools.fuzz.seeds` - the shipped seed files and the synthetic ones;
* :mod:`~shc.tools.fuzz.mutators` - the mutators and :func:`mutate`;
* :mod:`~shc.tools.fuzz.runner` - one case decoded and read again (:func:`check_case`), and a run (:func:`run_fuzz`);
* :mod:`~shc.tools.fuzz.report` - the tally of a run and its text;
* :mod:`~shc.tools.fuzz.cli` - the command line (``python -m shc.tools.fuzz``).
"""

from shc.tools.fuzz.cli import main
from shc.tools.fuzz.mutators import mutate
from shc.tools.fuzz.report import FuzzReport
from shc.tools.fuzz.runner import CaseRun, check_case, check_reader, run_case, run_fuzz
from shc.tools.fuzz.seeds import (
    CHUNKED_CELLS,
    SEEDS_DIR,
    Seed,
    default_seeds,
    random_context,
    random_weights,
    synthetic_seeds,
    table_latents,
)
from shc.tools.fuzz.syntax import (
    ContextCodes,
    HistogramTable,
    fake_exif,
    fake_icc,
    meta_entries,
    pack_histograms,
    pack_index,
    pack_meta,
    pack_tabl,
    read_histograms,
    read_tabl,
    segment_entries,
    split_file,
    split_segments,
    truncation_points,
)

__all__ = [
    "CHUNKED_CELLS",
    "SEEDS_DIR",
    "CaseRun",
    "ContextCodes",
    "FuzzReport",
    "HistogramTable",
    "Seed",
    "check_case",
    "check_reader",
    "default_seeds",
    "fake_exif",
    "fake_icc",
    "main",
    "meta_entries",
    "mutate",
    "pack_histograms",
    "pack_index",
    "pack_meta",
    "pack_tabl",
    "random_context",
    "random_weights",
    "read_histograms",
    "read_tabl",
    "run_case",
    "run_fuzz",
    "segment_entries",
    "split_file",
    "split_segments",
    "synthetic_seeds",
    "table_latents",
    "truncation_points",
]
