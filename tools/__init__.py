"""Developer tools that are not part of the normative decoder: the fuzzer."""
