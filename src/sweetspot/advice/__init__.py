"""The accepted answer's advice, tested on this machine: three stages that time what it names
(`cores`: processors; `memory`: the step against this machine's limits; `blocks`: block sizes),
each the fastest of interleaved rounds, and `claims`, which turns them and the answer into the
report's section "The answer's advice, tested here" (docs/advice.md)."""
