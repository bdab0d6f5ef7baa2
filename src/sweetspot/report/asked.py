"""The StackOverflow question's own figures, as it printed them, for the report to set its run
here beside (report/question.py, firstscreen.py)."""

# The question's own table, as it printed it: per epoch (seconds, test accuracy), batch 1 and
# batch 60000, each 10 epochs at lr 0.1. Its seconds include its test pass; ours are training only.
ASKED_LR = 0.1  # the question's SGD learning rate
ASKED = {
    1: [(63.99, 0.9623), (63.97, 0.9673), (63.97, 0.9715), (64.24, 0.9707), (64.20, 0.9723),
        (63.97, 0.9753), (63.60, 0.9770), (63.59, 0.9795), (63.67, 0.9782), (63.93, 0.9806)],
    60000: [(6.54, 0.1174), (6.34, 0.1179), (6.16, 0.1141), (6.18, 0.1145), (6.14, 0.1157),
            (6.31, 0.1178), (6.06, 0.1225), (6.17, 0.1289), (6.16, 0.1393), (6.08, 0.1535)],
}
