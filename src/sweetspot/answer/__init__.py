"""How the answer is computed: pure arithmetic on the cells and the seconds (time to target, the
estimate and its region, the cost model, the accepted answer's procedure)."""
