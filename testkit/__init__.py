"""What the tests and the performance scripts (``benchmarks/``) share: a real service started on demand and runs
created straight in the store (:mod:`.service`), the dashboard's seeded data and servers (:mod:`.dashboard`), the
loop-per-group reference FRPO loss (:mod:`.reference_loss`), and a real outside chat model installed from a PyPI
package's GGUF file with prompts in the authors' formats (:mod:`.outside_model`).

Never imported by the product (an import-linter contract); not part of the installed package.
"""
