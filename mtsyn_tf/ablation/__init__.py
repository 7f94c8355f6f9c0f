"""The paper's ablation table (Table 4) as one resumable grid of runs with one report.

``grid`` names the experiments and their shared data/budget, ``runner`` trains and
evaluates each (experiment, seed) once, ``protocols`` holds every evaluation call,
``claims`` turns the numbers into verdicts, ``report`` writes HTML + markdown + JSON.
``scripts/ablate.py`` is the command line.
"""
