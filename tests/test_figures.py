"""The report's figures on hand-made runs: each draws its data, censored cells as such."""

import matplotlib.pyplot as plt

from sweetspot import figures, report


def test_figures_draw_measured_and_censored_cells(answer):
    results, cells, spots = answer
    chosen = spots[0.97]["chosen"]
    first = figures.epoch_vs_target(cells, spots)
    right = first.axes[1]
    open_markers = [c for c in right.collections if len(c.get_offsets()) and
                    c.get_facecolors().size == 0]
    assert [list(c.get_offsets()[:, 0]) for c in open_markers] == [[1024]]
    assert right.get_xscale() == "log"
    for fig in (first, figures.accuracy_vs_time(results, chosen, 0.97),
                figures.steps_to_target(chosen, results, 0.97),
                figures.cost_model(chosen, report.cost_model(chosen, cells), spots[0.97],
                                         0.97)):
        assert fig.axes and all(ax.has_data() for ax in fig.axes)
        plt.close(fig)
