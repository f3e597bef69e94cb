"""Developer tooling for SNR Toolkit, not part of the pack: the host harness (`host`), the demo,
the benchmarks, and the helpers the tests share (tiny real-architecture models, the ideal model,
workflow tools). `python3 -m tools` is the one command line; run it from the repository root.

`host` and `__main__` use the standard library only; everything else runs inside the host venv,
with the real ComfyUI imported through `host.start_in_process`."""
