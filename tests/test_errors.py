"""Library errors name the library's parameter; the CLI prints the flag."""

from gan_probe.errors import GanProbeError


def test_param_error_keeps_library_words_and_cli_names_the_flag():
    e = GanProbeError("labels_per_class must be at least 1 (got 0)", param="labels_per_class")
    assert str(e) == "labels_per_class must be at least 1 (got 0)"
    assert e.for_cli() == "--labels-per-class must be at least 1 (got 0)"
    assert e.for_cli({"labels_per_class": "--labels"}) == "--labels must be at least 1 (got 0)"


def test_plain_error_is_unchanged_for_cli():
    assert GanProbeError("no images in x/").for_cli() == "no images in x/"
    # a param that the message does not start with is left alone
    assert GanProbeError("the value of lr is bad", param="lr").for_cli() == "the value of lr is bad"


def test_mentioned_parameters_become_flags_too():
    e = GanProbeError("out runs/resume already holds a run; continue it with resume=True or choose another folder",
                      param="out", mentions=("resume",))
    assert e.for_cli() == "--out runs/resume already holds a run; continue it with --resume or choose another folder"
    assert e.for_cli({"resume": "-r"}).endswith("continue it with -r or choose another folder")
