"""The mathematics under test: one module per result of Jang, Lee, Ryu (ICML 2024) and follow-ups.

Pure numpy, float64, exact quantities. Notation follows ``shared/MATH.md``:
N examples, K outputs, sensing tensor ``G`` of shape (N, K, m, n), offsets ``f0`` (N, K),
update ``delta`` (m, n), LoRA factors ``Q = [u; v]`` of shape (m + n, r).
"""
