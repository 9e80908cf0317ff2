"""Stage ``problems``: the SynBioCoT-style problem set with verifiable answers.

One module per family group builds rows with :func:`tasks.problems.records.problem`;
:mod:`tasks.common.splits` assigns entities to train/test once per namespace (the corpus stage
uses the same split to keep test cells out of the marker genes), ``choices`` draws distractors with a uniform
answer position, ``baselines`` scores simple predictors, ``report`` summarises the table.
"""
