"""Experiments: the numerical studies the claims run, apart from the verdicts drawn from them.

One module per experiment; none of them decides a verdict (``verify.claims`` does):
- ``landscape``: multi-start LoRA, every end point classified (global, spurious SOSP, …);
- ``gd``: plain LoRA gradient descent runs (the solver's "gd" method) and their step size;
- ``rank_speed``: LoRA gradient descent at several ranks against the certified optimum (Section 6);
- ``rademacher``: the exact empirical Rademacher complexity per sign draw (Lemma C.4);
- ``controls``: the planted wrong answers that negative controls feed to a check;
- ``figure_data``: the plain-JSON data of the report's figures (drawn by ``verify.figures``).
"""
