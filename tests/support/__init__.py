"""What only tests and benchmarks use, in one package: the runtime package `devenv` holds
only what the tasks and sessions run. Tests import it as `tests.support.X`, benchmarks in
scripts/ too (they put the checkout on sys.path); it imports `devenv`, never a test module or
a conftest. The programs the tests run (goapp, pyapp, pyzapp) stay in tests/fixtures/.
"""
