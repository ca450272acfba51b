"""The local stack that `civic up`, the tests and the benchmarks run on one machine; no deployed service
imports it."""
