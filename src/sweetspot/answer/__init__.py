"""How the answer is computed and checked, from the cells and the seconds."""
